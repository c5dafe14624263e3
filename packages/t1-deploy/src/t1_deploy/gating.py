"""Two-stage gating: θ* and δ by exhaustive search of the (θ, δ) grid, θ*−δ the early-exit threshold.

Replay of measured latencies: a query with router score τ̂ < θ−δ exits after T0; θ−δ ≤ τ̂ < θ gets
the cheap T1-lite re-rank; τ̂ ≥ θ gets full T1. Every routed query also pays the router's measured
evaluation time. Objective: mean ΔnDCG@10 vs T0; constraint: p95(routed) − p95(T0) ≤ budget.
The grid is finite and every point is replayed anyway, so the best feasible point is found exactly
by enumeration (a Lagrangian dual ascent over the same grid returned worse feasible points).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from t1_deploy._io import write_json
from t1_deploy._validate import check_array, check_int, check_number
from t1_deploy.errors import ConfigError, InvalidInputError, NotFittedError
from t1_deploy.reference.system import QueryLog


@dataclass(frozen=True)
class GatingOptimizationConfig:
    theta_sweep_range: tuple[float, float] = (0.9, 1.1)
    budget_constraint_ms: float = 0.2
    n_theta: int = 41
    delta_fractions: tuple[float, ...] = (0.0, 0.01, 0.025, 0.05)
    start_upshift_share: float = 0.05
    theta_start: float | None = None
    min_gain: float = 0.01

    def __post_init__(self) -> None:
        lo, hi = self.theta_sweep_range
        check_number("GatingOptimizationConfig.theta_sweep_range[0]", lo, low=0)
        check_number("GatingOptimizationConfig.theta_sweep_range[1]", hi, low=0)
        if not lo < hi:
            raise ConfigError(
                "GatingOptimizationConfig.theta_sweep_range must be increasing, "
                f"got {self.theta_sweep_range}"
            )
        check_number(
            "GatingOptimizationConfig.budget_constraint_ms", self.budget_constraint_ms, low=0
        )
        check_int("GatingOptimizationConfig.n_theta", self.n_theta, low=2, high=10_000)
        for d in self.delta_fractions:
            check_number("GatingOptimizationConfig.delta_fractions[]", d, low=0, high=1)
        check_number(
            "GatingOptimizationConfig.start_upshift_share",
            self.start_upshift_share,
            low=0.001,
            high=0.999,
        )
        if self.theta_start is not None:
            check_number("GatingOptimizationConfig.theta_start", self.theta_start)
        check_number("GatingOptimizationConfig.min_gain", self.min_gain)


@dataclass
class GatingResult:
    theta_star: float
    delta: float
    theta_early_exit: float
    feasible: bool
    mean_delta_ndcg: float
    p95_lift_ms: float
    shares: dict[str, float]
    roc_auc: float
    grid_size: int
    method: str = "exhaustive"
    roc: dict[str, list[float]] = field(default_factory=dict)


def routed_outcome(
    log: QueryLog, scores: npt.NDArray[np.float64], theta: float, delta: float, router_ms: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Per-query nDCG, latency (ms) and stage (0 T0, 1 lite, 2 T1) under thresholds θ, θ−δ."""
    stage = np.where(scores >= theta, 2, np.where(scores >= theta - delta, 1, 0))
    ndcg = np.choose(stage, [log.ndcg_t0, log.ndcg_lite, log.ndcg_t1])
    extra = np.choose(stage, [np.zeros(len(log)), log.latency_lite_ms, log.latency_t1_ms])
    return ndcg, log.latency_t0_ms + router_ms + extra, stage


class TwoStageGatingOptimizer:
    def __init__(self, config: GatingOptimizationConfig | None = None) -> None:
        self.config = config or GatingOptimizationConfig()
        self.result: GatingResult | None = None

    def optimize_gating_parameters(
        self, validation_data: QueryLog, router_scores: npt.ArrayLike, router_ms: float = 0.0
    ) -> GatingResult:
        if not isinstance(validation_data, QueryLog):
            raise InvalidInputError(
                f"validation_data must be a QueryLog, got {type(validation_data).__name__}"
            )
        scores = check_array("router_scores", router_scores, min_len=10)
        if len(scores) != len(validation_data):
            raise InvalidInputError(
                f"router_scores has {len(scores)} rows, validation_data {len(validation_data)}"
            )
        router_ms = check_number("router_ms", router_ms, low=0)
        cfg = self.config
        start = (
            cfg.theta_start
            if cfg.theta_start is not None
            else float(np.quantile(scores, 1.0 - cfg.start_upshift_share))
        )
        lo, hi = cfg.theta_sweep_range
        thetas = (
            np.linspace(start * lo, start * hi, cfg.n_theta)
            if start > 0
            else np.linspace(start * hi, start * lo, cfg.n_theta)
        )
        base_ndcg = validation_data.ndcg_t0
        base_p95 = float(np.percentile(validation_data.latency_t0_ms, 95))
        grid = []
        for theta in thetas:
            for frac in cfg.delta_fractions:
                delta = abs(theta) * frac
                ndcg, lat, stage = routed_outcome(validation_data, scores, theta, delta, router_ms)
                grid.append(
                    {
                        "theta": float(theta),
                        "delta": float(delta),
                        "gain": float(np.mean(ndcg - base_ndcg)),
                        "lift": float(np.percentile(lat, 95)) - base_p95,
                        "t1": float(np.mean(stage == 2)),
                        "lite": float(np.mean(stage == 1)),
                    }
                )
        feasible_points = [i for i, g in enumerate(grid) if g["lift"] <= cfg.budget_constraint_ms]
        feasible = bool(feasible_points)
        if feasible:  # highest gain; ties → fewest T1 upshifts (cheapest), then grid order
            best = max(feasible_points, key=lambda i: (grid[i]["gain"], -grid[i]["t1"], -i))
        else:  # nothing met the budget: keep everyone on T0 (the highest θ, no band)
            best = int(np.argmax([g["theta"] if g["delta"] == 0 else -np.inf for g in grid]))
        chosen = grid[best]
        from sklearn.metrics import roc_auc_score, roc_curve

        positives = validation_data.gain >= cfg.min_gain
        if positives.all() or not positives.any():
            raise InvalidInputError("ROC needs both positive and negative queries (check min_gain)")
        fpr, tpr, thr = roc_curve(positives, scores)
        keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), 200)).astype(int))
        self.result = GatingResult(
            theta_star=chosen["theta"],
            delta=chosen["delta"],
            theta_early_exit=chosen["theta"] - chosen["delta"],
            feasible=feasible,
            mean_delta_ndcg=chosen["gain"],
            p95_lift_ms=chosen["lift"],
            shares={
                "t0_only": 1 - chosen["t1"] - chosen["lite"],
                "lite": chosen["lite"],
                "t1": chosen["t1"],
            },
            roc_auc=float(roc_auc_score(positives, scores)),
            grid_size=len(grid),
            roc={
                "fpr": fpr[keep].tolist(),
                "tpr": tpr[keep].tolist(),
                "thresholds": np.nan_to_num(thr[keep], posinf=float(scores.max()) + 1).tolist(),
            },
        )
        return self.result

    def export_gating_config(self, path: str | Path, roc_png: str | Path | None = None) -> Path:
        if self.result is None:
            raise NotFittedError("optimize_gating_parameters must run first")
        r = self.result
        payload: dict[str, Any] = {
            "schema_version": "1.0",
            "kind": "theta_star_production",
            **asdict(r),
            "budget_constraint_ms": self.config.budget_constraint_ms,
            "positives": f"queries whose T1 gain >= {self.config.min_gain}",
        }
        if roc_png is not None:
            from t1_deploy._plots import roc_png as draw

            draw(Path(roc_png), r.roc["fpr"], r.roc["tpr"], r.roc_auc, "Router ROC (validation)")
        return write_json(Path(path), payload)
