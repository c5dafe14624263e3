"""plot(): surprise and entropy per step with the thresholds (needs the ``plot`` extra)."""

from __future__ import annotations

import math
import os
from pathlib import Path

from cert.trajectory.errors import TrajectoryError
from cert.trajectory.result import TrajectoryResult

__all__ = ["plot"]


def plot(result: TrajectoryResult, path: str | os.PathLike[str]) -> Path:
    """Write a two-panel PNG of one trajectory and return its path.

    Top: surprise (−log p) per token and the low-probability line −ln(low_prob_threshold).
    Bottom: full-vocabulary entropy per token and the mean-entropy limit of the quality check.
    """
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise TrajectoryError(
            "plot() needs matplotlib: pip install 'cert-trajectory[plot]'",
            context={"field": "matplotlib", "value": None},
        ) from exc
    steps = [token.position for token in result.tokens]
    labels = [token.token for token in result.tokens]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True)
    try:
        top.plot(steps, [t.surprise for t in result.tokens], marker="o", ms=3, label="surprise")
        low_line = -math.log(result.thresholds["low_prob_threshold"])
        top.axhline(low_line, color="tab:red", ls="--", lw=1, label="low-probability line")
        top.set_ylabel("surprise (nats)")
        top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        bottom.plot(steps, [t.entropy for t in result.tokens], marker="o", ms=3, color="tab:green",
                    label="entropy")  # fmt: skip
        bottom.axhline(result.thresholds["max_mean_entropy"], color="tab:red", ls="--", lw=1,
                       label="max mean entropy")  # fmt: skip
        if result.mean_entropy is not None:
            bottom.axhline(
                result.mean_entropy, color="tab:gray", ls=":", lw=1, label="mean entropy"
            )
        bottom.set_ylabel("entropy (nats)")
        bottom.set_xlabel("generated token (position)")
        bottom.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        if len(labels) <= 40:
            bottom.set_xticks(steps)
            bottom.set_xticklabels([repr(x)[1:-1][:8] for x in labels], rotation=70, fontsize=7)
        else:
            from matplotlib.ticker import MaxNLocator

            bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
        verdict = (
            "passed"
            if result.passed_quality_check
            else "failed: " + ", ".join(result.failed_checks)
        )
        ppl = "n/a" if result.perplexity is None else f"{result.perplexity:.2f}"
        top.set_title(f"{result.mode} · perplexity {ppl} · {verdict}", fontsize=10)
        figure.tight_layout()
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(target, dpi=110, bbox_inches="tight")
    finally:
        plt.close(figure)
    return target
