"""Router distillation: an additive monotone LightGBM teacher → 16-segment INT8 tables.

The teacher is LightGBM with `interaction_constraints` putting every feature in its own group, so
each tree splits on one feature and the model is exactly c + Σⱼ gⱼ(xⱼ). Each gⱼ (read from
LightGBM's per-feature contributions) is fitted by a continuous piecewise-linear table with 16
segments at quantile knots, under the teacher's monotone direction (least squares with
non-negative increments), then its 17 knot values are quantized to INT8 with one affine scale per
table. Rounding is monotone, so monotone tables stay monotone; the error is ≤ scale/2.
"""

from __future__ import annotations

import bisect
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from t1_deploy._io import read_json, verify_checksum, with_checksum, write_json
from t1_deploy._validate import check_array, check_int, check_number, check_same_length
from t1_deploy.errors import ArtifactError, ConfigError, InvalidInputError, NotFittedError
from t1_deploy.reference.system import FEATURES

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1.0"
HEADS = ("tau", "spend", "gain")
#: Monotone direction per head and feature (FEATURES order: entropy, length, NL conf., miss).
MONOTONE: dict[str, tuple[int, int, int, int]] = {
    "tau": (1, 1, 0, 0),
    "spend": (1, 1, 0, 0),
    "gain": (0, 0, -1, 0),
}


@dataclass(frozen=True)
class RouterDistillationConfig:
    """Teacher and distillation settings (seed names kept: n_segments, quantization_bits, ...)."""

    n_segments: int = 16
    quantization_bits: int = 8
    no_regret_threshold: float = 0.05  # percentage points of nDCG@10
    fidelity_r2_min: float = 0.99
    n_estimators: int = 150
    num_leaves: int = 4
    learning_rate: float = 0.05
    min_data_in_leaf: int = 50
    max_bin: int = 8
    holdout_fraction: float = 0.2
    sweep_points: int = 10_000
    seed: int = 0

    def __post_init__(self) -> None:
        check_int("RouterDistillationConfig.n_segments", self.n_segments, low=1, high=256)
        if self.quantization_bits != 8:
            raise ConfigError(
                "RouterDistillationConfig.quantization_bits must be 8, "
                f"got {self.quantization_bits!r}"
            )
        check_number(
            "RouterDistillationConfig.no_regret_threshold", self.no_regret_threshold, low=0
        )
        check_number("RouterDistillationConfig.fidelity_r2_min", self.fidelity_r2_min, high=1.0)
        check_int("RouterDistillationConfig.n_estimators", self.n_estimators, low=1, high=10_000)
        check_int("RouterDistillationConfig.num_leaves", self.num_leaves, low=2, high=1024)
        check_number("RouterDistillationConfig.learning_rate", self.learning_rate, low=1e-6, high=1)
        check_int("RouterDistillationConfig.min_data_in_leaf", self.min_data_in_leaf, low=1)
        check_int("RouterDistillationConfig.max_bin", self.max_bin, low=2, high=255)
        check_number(
            "RouterDistillationConfig.holdout_fraction", self.holdout_fraction, low=0.05, high=0.5
        )
        check_int("RouterDistillationConfig.sweep_points", self.sweep_points, low=100, high=10**7)
        check_int("RouterDistillationConfig.seed", self.seed, low=0, high=2**31 - 1)


@dataclass
class Int8Table:
    """One feature's piecewise-linear shape function, values stored as INT8 with an affine scale."""

    feature: str
    direction: int
    knots: list[float]
    q: list[int]
    scale: float
    offset: float

    def values(self) -> npt.NDArray[np.float64]:
        return self.offset + self.scale * (np.asarray(self.q, dtype=np.float64) + 128.0)

    def evaluate(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.interp(x, self.knots, self.values())


@dataclass
class DistilledHead:
    intercept: float
    tables: list[Int8Table]

    def predict(self, X: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        out = np.full(len(X), self.intercept)
        for j, table in enumerate(self.tables):
            out += table.evaluate(X[:, j])
        return out


@dataclass
class DistillationReport:
    """What `fit` measured: teacher fit, distillation fidelity, monotonicity, quantization error."""

    n_train: int
    n_holdout: int
    r2_holdout: dict[str, float]
    max_quantization_error: dict[str, float]
    quantization_within_half_step: bool
    monotonicity_violations: dict[str, int]
    sweep_points: int
    fidelity_ok: bool


def table_knots(
    x: npt.NDArray[np.float64], thresholds: list[float], n_segments: int
) -> npt.NDArray[np.float64]:
    """`n_segments + 1` knots: the data range plus a knot pair (t, t + ε) at each teacher split t
    (most used first). LightGBM sends x ≤ t left, so a table through those knots reproduces the
    teacher's step everywhere except inside (t, t + ε]; any knots left over go to quantiles."""
    lo, hi = float(x.min()), float(x.max())
    eps = max(1e-9, 1e-7 * (hi - lo))
    knots = {lo, hi}
    for t in thresholds:
        if not lo <= t < hi:
            continue
        pair = {float(t), float(min(t + eps, hi))}
        if len(knots | pair) > n_segments + 1:
            break
        knots |= pair
    grid = np.array(sorted(knots))
    for q in _quantile_knots(x, n_segments):
        if len(grid) >= n_segments + 1:
            break
        if np.min(np.abs(grid - q)) > eps:
            grid = np.sort(np.append(grid, q))
    return _quantile_knots(grid, n_segments) if len(grid) < n_segments + 1 else grid


def fit_monotone_table(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    knots: npt.NDArray[np.float64],
    direction: int,
) -> npt.NDArray[np.float64]:
    """Least-squares continuous PL values at `knots`; non-decreasing (direction +1) or
    non-increasing (−1) via non-negative increments, unconstrained for 0."""
    from scipy.optimize import lsq_linear

    basis = _hat_basis(x, knots)
    n_k = len(knots)
    # v = v0 + sign * cumsum(d): the increments d are bounded below by 0 when monotone.
    cumulative = np.tril(np.ones((n_k, n_k)))
    sign = -1.0 if direction < 0 else 1.0
    design = basis @ (cumulative * np.r_[1.0, np.full(n_k - 1, sign)][None, :])
    lower = np.r_[-np.inf, np.full(n_k - 1, 0.0 if direction != 0 else -np.inf)]
    result = lsq_linear(design, y, bounds=(lower, np.full(n_k, np.inf)), method="bvls")
    return (cumulative * np.r_[1.0, np.full(n_k - 1, sign)][None, :]) @ result.x


def _quantile_knots(x: npt.NDArray[np.float64], n_segments: int) -> npt.NDArray[np.float64]:
    knots = np.unique(np.quantile(x, np.linspace(0.0, 1.0, n_segments + 1)))
    knots = knots[: n_segments + 1]
    lo, hi = float(x.min()), float(x.max())
    if hi == lo:
        return lo + np.arange(n_segments + 1, dtype=np.float64) * 1e-6
    while len(knots) < n_segments + 1:  # ties in x: split the widest segment
        widest = int(np.argmax(np.diff(knots)))
        knots = np.insert(knots, widest + 1, (knots[widest] + knots[widest + 1]) / 2.0)
    return knots


def _hat_basis(
    x: npt.NDArray[np.float64], knots: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    eye = np.eye(len(knots))
    return np.stack([np.interp(x, knots, eye[i]) for i in range(len(knots))], axis=1)


def quantize_int8(values: npt.NDArray[np.float64]) -> tuple[list[int], float, float]:
    """Affine INT8: q = round((v − min)/scale) − 128 with scale = (max − min)/255."""
    lo, hi = float(values.min()), float(values.max())
    scale = (hi - lo) / 255.0 if hi > lo else 0.0
    if scale == 0.0:  # a constant table: every code is -128 and decodes to `lo` exactly
        return [-128] * len(values), 0.0, lo
    q = np.clip(np.round((values - lo) / scale) - 128.0, -128, 127).astype(int)
    return q.tolist(), scale, lo


class MonotoneRouterDistiller:
    """Fit the monotone additive teacher for τ (upshift benefit), spend (ms) and gain (ΔnDCG)."""

    def __init__(self, config: RouterDistillationConfig | None = None) -> None:
        self.config = config or RouterDistillationConfig()
        self.teachers: dict[str, Any] = {}
        self.heads: dict[str, DistilledHead] = {}
        self.report: DistillationReport | None = None
        self.routing_threshold: float | None = None

    def _teacher(self, X: npt.NDArray[np.float64], y: npt.NDArray[np.float64], head: str) -> Any:
        import lightgbm as lgb

        cfg = self.config
        params = {
            "objective": "regression",
            "learning_rate": cfg.learning_rate,
            "num_leaves": cfg.num_leaves,
            "min_data_in_leaf": cfg.min_data_in_leaf,
            "monotone_constraints": list(MONOTONE[head]),
            "monotone_constraints_method": "advanced",
            "interaction_constraints": [[j] for j in range(X.shape[1])],
            "max_bin": cfg.max_bin,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": 1,
            "seed": cfg.seed,
            "verbose": -1,
        }
        data = lgb.Dataset(
            X,
            label=y,
            feature_name=list(FEATURES),
            free_raw_data=False,
            params={"max_bin": cfg.max_bin, "verbose": -1},
        )
        return lgb.train(params, data, num_boost_round=cfg.n_estimators)

    def fit(
        self,
        X_context: npt.ArrayLike,
        y_tau: npt.ArrayLike,
        y_spend: npt.ArrayLike,
        y_gain: npt.ArrayLike,
    ) -> DistillationReport:
        """Train the three teachers, distil them, and measure fidelity on a held-out slice."""
        X = check_array("X_context", X_context, ndim=2, min_len=50, columns=len(FEATURES))
        targets = {
            "tau": check_array("y_tau", y_tau),
            "spend": check_array("y_spend", y_spend),
            "gain": check_array("y_gain", y_gain),
        }
        check_same_length(["X_context", *HEADS], [X, *targets.values()])
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        order = rng.permutation(len(X))
        n_hold = max(10, round(cfg.holdout_fraction * len(X)))
        hold, fit_rows = order[:n_hold], order[n_hold:]
        r2: dict[str, float] = {}
        qerr: dict[str, float] = {}
        viol: dict[str, int] = {}
        within_half_step = True
        for head in HEADS:
            teacher = self._teacher(X, targets[head], head)
            self.teachers[head] = teacher
            contrib = teacher.predict(X[fit_rows], pred_contrib=True)
            intercept = float(np.mean(contrib[:, -1]))
            splits = split_thresholds(teacher)
            tables = []
            for j, name in enumerate(FEATURES):
                knots = table_knots(X[fit_rows, j], splits.get(j, []), cfg.n_segments)
                values = fit_monotone_table(X[fit_rows, j], contrib[:, j], knots, MONOTONE[head][j])
                q, scale, offset = quantize_int8(values)
                table = Int8Table(name, MONOTONE[head][j], knots.tolist(), q, scale, offset)
                err = float(np.max(np.abs(table.values() - values)))
                qerr[head] = max(qerr.get(head, 0.0), err)
                within_half_step &= err <= scale / 2.0 * (1 + 1e-9) + 1e-15
                tables.append(table)
            self.heads[head] = DistilledHead(intercept, tables)
            teacher_hold = teacher.predict(X[hold])
            r2[head] = _r2(teacher_hold, self.heads[head].predict(X[hold]))
            viol[head] = self.monotonicity_violations(head, X)
        self.report = DistillationReport(
            n_train=len(fit_rows),
            n_holdout=len(hold),
            r2_holdout=r2,
            max_quantization_error=qerr,
            quantization_within_half_step=within_half_step,
            monotonicity_violations=viol,
            sweep_points=cfg.sweep_points,
            fidelity_ok=all(v >= cfg.fidelity_r2_min for v in r2.values())
            and not any(viol.values())
            and within_half_step,
        )
        log.info("router distilled", extra={"r2": r2, "violations": viol})
        return self.report

    def monotonicity_violations(self, head: str, X: npt.NDArray[np.float64]) -> int:
        """Count decreases (against the constraint) over a `sweep_points`-point sweep per feature.

        Each constrained feature is swept over its observed range plus 10 % on both sides while the
        others sit at random training rows, for both the teacher and the INT8 tables.
        """
        self._require_fit()
        rng = np.random.default_rng(self.config.seed + 1)
        violations = 0
        for j, direction in enumerate(MONOTONE[head]):
            if direction == 0:
                continue
            lo, hi = float(X[:, j].min()), float(X[:, j].max())
            pad = 0.1 * (hi - lo or 1.0)
            n_base = 10
            grid = np.linspace(lo - pad, hi + pad, self.config.sweep_points // n_base)
            for row in X[rng.choice(len(X), size=n_base, replace=False)]:
                sweep = np.tile(row, (len(grid), 1))
                sweep[:, j] = grid
                for pred in (self.heads[head].predict(sweep), self.teachers[head].predict(sweep)):
                    steps = np.diff(pred) * direction
                    violations += int(np.sum(steps < -1e-12))
        return violations

    def predict(self, X_context: npt.ArrayLike, head: str = "tau") -> npt.NDArray[np.float64]:
        self._require_fit()
        if head not in HEADS:
            raise InvalidInputError(f"head must be one of {HEADS}, got {head!r}")
        X = check_array("X_context", X_context, ndim=2, columns=len(FEATURES))
        return self.heads[head].predict(X)

    def teacher_predict(
        self, X_context: npt.ArrayLike, head: str = "tau"
    ) -> npt.NDArray[np.float64]:
        self._require_fit()
        X = check_array("X_context", X_context, ndim=2, columns=len(FEATURES))
        return np.asarray(self.teachers[head].predict(X, num_threads=1), dtype=np.float64)

    def _require_fit(self) -> None:
        if not self.heads:
            raise NotFittedError("MonotoneRouterDistiller.fit must run first")

    def to_payload(self, provenance: dict[str, Any] | None = None) -> dict[str, Any]:
        self._require_fit()
        content = {
            "schema_version": SCHEMA_VERSION,
            "kind": "router_distilled_int8",
            "features": list(FEATURES),
            "n_segments": self.config.n_segments,
            "routing": {"head": "tau", "threshold": self.routing_threshold},
            "heads": {
                head: {"intercept": h.intercept, "tables": [asdict(t) for t in h.tables]}
                for head, h in self.heads.items()
            },
            "report": asdict(self.report) if self.report else None,
            "provenance": provenance or {},
        }
        return with_checksum(json.loads(json.dumps(content, allow_nan=False)))

    def export_production_config(
        self, path: str | Path, provenance: dict[str, Any] | None = None
    ) -> Path:
        """Write `router_distilled_int8.json` atomically (numbers as numbers, with a checksum)."""
        return write_json(Path(path), self.to_payload(provenance))


class Int8RouterPolicy:
    """Pure-Python evaluator of an exported router: no numpy or LightGBM on the hot path."""

    def __init__(self, payload: dict[str, Any], source: str = "router payload") -> None:
        verify_checksum(payload, source)
        try:
            if payload["schema_version"] != SCHEMA_VERSION:
                raise ArtifactError(
                    f"{source}: schema_version {payload['schema_version']!r} != {SCHEMA_VERSION!r}"
                )
            self.features = list(payload["features"])
            self.threshold = payload["routing"]["threshold"]
            self._heads: dict[str, tuple[float, list[tuple[list[float], list[float]]]]] = {}
            for head, spec in payload["heads"].items():
                tables = []
                for t in spec["tables"]:
                    vals = [t["offset"] + t["scale"] * (q + 128) for q in t["q"]]
                    if len(vals) != len(t["knots"]) or any(
                        b < a for a, b in zip(t["knots"], t["knots"][1:], strict=False)
                    ):
                        raise ArtifactError(f"{source}: table {t['feature']} is malformed")
                    tables.append((list(map(float, t["knots"])), vals))
                self._heads[head] = (float(spec["intercept"]), tables)
        except (KeyError, TypeError) as exc:
            raise ArtifactError(f"{source}: missing or malformed field {exc}") from exc

    @classmethod
    def load(cls, path: str | Path) -> Int8RouterPolicy:
        payload = read_json(Path(path))
        if not isinstance(payload, dict):
            raise ArtifactError(f"{path}: top level must be an object")
        return cls(payload, str(path))

    def score(self, row: list[float] | tuple[float, ...], head: str = "tau") -> float:
        """One row, one head: Σ of bisect + linear interpolation per table."""
        intercept, tables = self._heads[head]
        total = intercept
        for x, (knots, vals) in zip(row, tables, strict=True):
            if x <= knots[0]:
                total += vals[0]
            elif x >= knots[-1]:
                total += vals[-1]
            else:
                i = bisect.bisect_right(knots, x) - 1
                t = (x - knots[i]) / (knots[i + 1] - knots[i])
                total += vals[i] + t * (vals[i + 1] - vals[i])
        return total

    def upshift(self, row: list[float] | tuple[float, ...]) -> bool:
        if self.threshold is None:
            raise NotFittedError("the exported router has no routing threshold")
        return self.score(row) >= self.threshold

    def score_batch(self, X: npt.ArrayLike, head: str = "tau") -> npt.NDArray[np.float64]:
        arr = check_array("X", X, ndim=2, columns=len(self.features))
        intercept, tables = self._heads[head]
        out = np.full(len(arr), intercept)
        for j, (knots, vals) in enumerate(tables):
            out += np.interp(arr[:, j], knots, vals)
        return out


def split_thresholds(booster: Any) -> dict[int, list[float]]:
    """Split thresholds per feature index, most frequently used first."""
    counts: dict[int, dict[float, int]] = {}

    def walk(node: dict[str, Any]) -> None:
        if "split_feature" in node:
            per = counts.setdefault(int(node["split_feature"]), {})
            per[float(node["threshold"])] = per.get(float(node["threshold"]), 0) + 1
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in booster.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    return {j: sorted(c, key=lambda t: (-c[t], t)) for j, c in counts.items()}


def _r2(reference: npt.NDArray[np.float64], approx: npt.NDArray[np.float64]) -> float:
    ss_res = float(np.sum((reference - approx) ** 2))
    ss_tot = float(np.sum((reference - reference.mean()) ** 2))
    return 1.0 if ss_tot == 0.0 else 1.0 - ss_res / ss_tot
