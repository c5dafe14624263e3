"""Showcase for ``resontinex demo``: fingerprint two fixture models, compare them, and watch a
monitored endpoint raise a drift alert when the served model is swapped."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np

from hbt_core.challenges import generate_probes
from hbt_core.models import load_fixture
from hbt_core.monitor import MemorySink, MonitorConfig, MonitoringService
from hbt_core.server import HTTPModel, ModelEndpoint
from hbt_core.signature import EncoderConfig, build_signature
from hbt_core.verification import Calibration, verify


def showcase(out_dir: Path) -> str:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    probes = generate_probes(32, seed=0)
    cfg = EncoderConfig()
    base, other = load_fixture("base"), load_fixture("seed1")
    ref = build_signature(base, probes, cfg, run_seed=0)
    cal = Calibration.from_null(ref, [build_signature(base, probes, cfg, s) for s in (1, 2, 3)])
    same = verify(ref, build_signature(base, probes, cfg, 4), cal)
    diff = verify(ref, build_signature(other, probes, cfg, 4), cal)

    sink = MemorySink()
    with ModelEndpoint(base) as endpoint:
        service = MonitoringService(
            HTTPModel(endpoint.url),
            ref,
            probes,
            cal,
            MonitorConfig(sample_rate=0.25, check_interval=0.0, max_checks=8),
            [sink],
        )
        asyncio.run(service.run())
        swap_at = service.checks
        endpoint.model = other
        service.config = MonitorConfig(sample_rate=0.25, check_interval=0.0, max_checks=20)
        asyncio.run(service.run())
    history = [h[0] for h in service.history]
    sims_by_check = [float(np.mean(history[i : i + 8])) for i in range(0, len(history), 8)]
    result = {
        "probes": len(probes),
        "dim": cfg.dim,
        "base_vs_base": {
            "similarity": same.similarity,
            "decision": same.sequential.decision,
            "queries": same.sequential.queries,
        },
        "base_vs_seed1": {
            "similarity": diff.similarity,
            "decision": diff.sequential.decision,
            "queries": diff.sequential.queries,
        },
        "score_threshold": cal.score_threshold,
        "monitor": {
            "swap_after_check": swap_at,
            "mean_similarity_per_check": sims_by_check,
            "alerts": [a.__dict__ for a in sink.alerts],
        },
    }
    (out_dir / "hbt_demo.json").write_text(json.dumps(result, indent=2))
    _plot(out_dir, sims_by_check, swap_at, [a.check for a in sink.alerts])
    first = sink.alerts[0] if sink.alerts else None
    lines = [
        "hbt-core: behavioural fingerprints of two tiny byte-level GPTs (32 probes, D=16384)",
        f"  base vs base (fresh perturbations): similarity {same.similarity:.4f} -> "
        f"{same.sequential.decision} after {same.sequential.queries} probes",
        f"  base vs seed1 (same data, other seed): similarity {diff.similarity:.4f} -> "
        f"{diff.sequential.decision} after {diff.sequential.queries} probes",
        f"  calibrated threshold {cal.score_threshold:.4f} (same-model null, alpha=0.01)",
        f"  monitoring 127.0.0.1 endpoint: model swapped after check {swap_at}; "
        + (f"drift alert ({first.kind}) at check {first.check}" if first else "NO alert raised"),
        "verdicts:",
        _verdict("base vs base", same.sequential.decision, "same", "the same model must match"),
        _verdict(
            "base vs seed1", diff.sequential.decision, "different", "another seed is another model"
        ),
        "  drift alert: "
        + (
            f"raised after the swap, expected: the watch saw the new model within "
            f"{first.check - swap_at} checks"
            if first is not None and first.check > swap_at
            else "UNEXPECTED: no alert after the swap, or one before it (a false alarm)"
        ),
    ]
    return "\n".join(lines)


def _verdict(label: str, got: str, want: str, why: str) -> str:
    status = "expected" if got == want else f"UNEXPECTED (expected {want})"
    return f"  {label}: {got}, {status}: {why}"


def _plot(out_dir: Path, sims: list[float], swap_at: int, alert_checks: list[int]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.plot(range(1, len(sims) + 1), sims, marker="o", label="mean probe similarity")
    ax.axvline(swap_at + 0.5, color="grey", linestyle="--", label="model swapped")
    for i, c in enumerate(alert_checks):
        ax.axvline(c, color="red", alpha=0.6, label="drift alert" if i == 0 else None)
    ax.set_title("hbt-core drift watch: similarity of the served model to its fingerprint")
    ax.set_xlabel("monitoring check (count)")
    ax.set_ylabel("similarity to reference (Hamming, 0–1)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    fig.savefig(out_dir / "hbt_monitor.png", dpi=100, bbox_inches="tight")
    plt.close(fig)
