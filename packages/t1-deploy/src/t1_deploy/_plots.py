"""PNG figures (matplotlib, Agg backend, imported lazily); skipped when matplotlib is absent."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is a declared dependency
        return None
    return plt


def roc_png(path: Path, fpr: list[float], tpr: list[float], auc: float, title: str) -> Path | None:
    plt = _pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(fpr, tpr, label=f"router τ̂ (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def pareto_png(path: Path, points: list[dict[str, Any]], front: list[int]) -> Path | None:
    plt = _pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(8, 4.5))
    xs = [p["p95_warm_ms"] for p in points]
    ys = [p["delta_ndcg"] * 100 for p in points]
    ax.scatter(xs, ys, c=[p["jaccard"] for p in points], cmap="viridis", s=28, label="configs")
    fx = [xs[i] for i in front]
    fy = [ys[i] for i in front]
    ax.scatter(fx, fy, facecolors="none", edgecolors="red", s=90, label="Pareto front")
    for p in points:
        ax.annotate(f"{p['ef']}/{p['topk']}", (p["p95_warm_ms"], p["delta_ndcg"] * 100), fontsize=6)
    ax.set_xlabel("warm p95 latency of T1 stage (ms)")
    ax.set_ylabel("ΔnDCG@10 vs current T1 config (pp)")
    ax.set_title("Latency harvest: ef/topk sweep (colour = Jaccard@10)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def monitoring_png(path: Path, history: list[dict[str, Any]], limit: float) -> Path | None:
    plt = _pyplot()
    if plt is None:
        return None
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    w = [h["window"] for h in history]
    a1.plot(w, [h["delta_ndcg"] * 100 for h in history])
    a1.set_ylabel("window ΔnDCG (pp)")
    a2.plot(w, [h["cusum"] for h in history], label="CUSUM")
    a2.axhline(limit, color="red", ls="--", label="limit h")
    a2.set_xlabel("window (minutes)")
    a2.set_ylabel("CUSUM (standard errors)")
    a2.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    fig.suptitle("Production monitoring: quality per window and its CUSUM alarm")
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
