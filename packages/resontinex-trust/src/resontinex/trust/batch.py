"""evaluate_batch: the gate over numpy arrays (the ``numpy`` extra).

Same math as the scalar constructor, vectorised. numpy's ``log``/``exp`` may differ from libm
in the last bit, so scores agree with the scalar path to ~1e-15; tiers and decisions are made
identical by re-evaluating, with the scalar gate, every row whose score lies within 1e-9 of a
tier bound or the trust floor (a handful of rows in practice).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from resontinex.trust.composite_trust_gate import (
    CLAMP_EPSILON,
    RULE_CIRCUIT_BREAKER,
    RULE_ENTROPY,
    RULE_TIER_ACTION,
    RULE_TRUST_FLOOR,
    CompositeTrustGate,
    check_calibrated_score,
)
from resontinex.trust.config import TrustConfig, default_config, validate_and_normalize_config
from resontinex.trust.errors import CalibratedScoreError, TrustInputError, TrustInputTypeError
from resontinex.trust.signals import DECISIONS, SIGNAL_NAMES, TIERS, Decision, InputVector, RiskTier

if TYPE_CHECKING:
    import numpy as np

    from resontinex.trust.protocols import ScoreCalibrator

__all__ = ["RULES", "BatchResult", "evaluate_batch"]

RULES = (RULE_TIER_ACTION, RULE_TRUST_FLOOR, RULE_ENTROPY, RULE_CIRCUIT_BREAKER)
BOUNDARY_TOLERANCE = 1e-9
MAX_ROWS = 100_000_000


@dataclass(frozen=True, slots=True)
class BatchResult:
    """Per-row results; codes index :data:`TIERS`, :data:`DECISIONS` and :data:`RULES`."""

    raw_trust_scores: np.ndarray
    trust_scores: np.ndarray
    tier_codes: np.ndarray
    decision_codes: np.ndarray
    rule_codes: np.ndarray
    rows_rechecked: int

    def __len__(self) -> int:
        return int(self.trust_scores.shape[0])

    @property
    def tiers(self) -> list[RiskTier]:
        return [TIERS[i] for i in self.tier_codes.tolist()]

    @property
    def decisions(self) -> list[Decision]:
        return [DECISIONS[i] for i in self.decision_codes.tolist()]

    @property
    def rules(self) -> list[str]:
        return [RULES[i] for i in self.rule_codes.tolist()]


def _array(np: Any, name: str, values: Any) -> np.ndarray:
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError) as exc:
        raise TrustInputTypeError(f"{name}: cannot be read as an array ({exc})") from None
    if arr.dtype.kind not in "fiu":
        raise TrustInputTypeError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise TrustInputError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    if arr.shape[0] > MAX_ROWS:
        raise TrustInputError(f"{name}: more than {MAX_ROWS} rows ({arr.shape[0]})")
    arr = arr.astype(np.float64, copy=False)
    # Two reductions instead of elementwise masks; min/max propagate NaN, which fails both tests.
    if arr.size and not (arr.min() >= 0.0 and arr.max() <= 1.0):
        i = int(np.flatnonzero(~((arr >= 0.0) & (arr <= 1.0)))[0])
        raise TrustInputError(f"{name}[{i}]: must be a finite number in [0, 1], got {arr[i]!r}")
    return arr


def _weighted_logit(np: Any, x: np.ndarray, weight: float, scratch: np.ndarray) -> np.ndarray:
    """weight * log(x / (1 - x)) computed in place in ``x`` (``x`` is already clamped)."""
    np.subtract(1.0, x, out=scratch)
    np.divide(x, scratch, out=x)
    np.log(x, out=x)
    np.multiply(x, weight, out=x)
    return x


def _calibrated(np: Any, calibrator: ScoreCalibrator, raw: np.ndarray) -> np.ndarray:
    """The calibrator's score for every row, held to the scalar gate's rule.

    Every value passes :func:`check_calibrated_score` (vectorised: a range test, then the
    scalar check on the first failing row, which raises naming ``trust_scores[i]``).
    """
    predict_many = getattr(calibrator, "predict_many", None)
    if predict_many is None:
        rows = raw.tolist()
        return np.array(
            [
                v if p is None else check_calibrated_score(p, v, f"trust_scores[{i}]")
                for i, (p, v) in enumerate(zip(map(calibrator.predict, rows), rows, strict=True))
            ],
            dtype=np.float64,
        )
    answer = np.asarray(predict_many(raw))
    if answer.dtype.kind not in "fiu" or answer.shape != raw.shape:
        raise CalibratedScoreError(
            f"trust_scores: predict_many returned {answer.dtype} values of shape {answer.shape}; "
            f"expected {raw.shape[0]} finite probabilities"
        )
    score = answer.astype(np.float64)
    if score.size and not (score.min() >= 0.0 and score.max() <= 1.0):  # NaN fails both
        for i in np.flatnonzero(~((score >= 0.0) & (score <= 1.0))).tolist():
            score[i] = check_calibrated_score(answer[i].item(), raw[i].item(), f"trust_scores[{i}]")
    return score


def evaluate_batch(
    alignment_score: Any,
    epistemic_risk: Any,
    confidence_band: Any,
    config: TrustConfig | None = None,
    calibrator: ScoreCalibrator | None = None,
    *,
    circuit_open: bool = False,
) -> BatchResult:
    """Evaluate many rows at once; results match ``CompositeTrustGate`` row by row."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise TrustInputError(
            "evaluate_batch needs numpy: pip install 'resontinex-trust[numpy]'"
        ) from None
    if config is None:
        config = default_config()
    elif not isinstance(config, TrustConfig):
        config = validate_and_normalize_config(config)
    a, r, c = (
        _array(np, name, values)
        for name, values in zip(
            SIGNAL_NAMES, (alignment_score, epistemic_risk, confidence_band), strict=True
        )
    )
    if not a.shape == r.shape == c.shape:
        raise TrustInputError(f"inputs: lengths differ ({a.shape[0]}, {r.shape[0]}, {c.shape[0]})")
    wa, wr, wc = config.weights
    lo, hi = CLAMP_EPSILON, 1.0 - CLAMP_EPSILON
    # The scalar formula, in place, with the same operation order (so the same rounding):
    # raw = 1 / (1 + exp(-((wa·la + wr·lr) + wc·lc))).
    scratch = np.empty_like(a)
    z = _weighted_logit(np, np.clip(a, lo, hi), wa, scratch)
    term = np.subtract(1.0, r)
    z += _weighted_logit(np, np.clip(term, lo, hi, out=term), wr, scratch)
    term = np.subtract(1.0, c, out=term)
    z += _weighted_logit(np, np.clip(term, lo, hi, out=term), wc, scratch)
    raw = np.negative(z, out=z)
    np.exp(raw, out=raw)
    raw += 1.0
    np.divide(1.0, raw, out=raw)
    score = raw
    if calibrator is not None and getattr(calibrator, "is_fitted", True):
        score = _calibrated(np, calibrator, raw)
    # Tier = how many upper bounds lie strictly below the score (bounds are inclusive).
    tier = np.zeros(score.shape, dtype=np.int8)
    for bound in config.tier_bounds[:3]:
        tier += score > bound
    action_codes = np.asarray([DECISIONS.index(d) for d in config.tier_actions], dtype=np.int8)
    decision = action_codes[tier]
    rule = np.zeros(score.shape, dtype=np.int8)
    execute = DECISIONS.index(Decision.EXECUTE)
    if circuit_open:
        decision[:] = DECISIONS.index(Decision.REVIEW)
        rule[:] = RULES.index(RULE_CIRCUIT_BREAKER)
    else:
        is_execute = decision == execute
        floor_rows = np.zeros(score.shape, dtype=bool)
        if config.below_floor_decision is not Decision.EXECUTE:
            floor_rows = is_execute & (score < config.trust_floor)
            decision[floor_rows] = DECISIONS.index(config.below_floor_decision)
            rule[floor_rows] = RULES.index(RULE_TRUST_FLOOR)
        if config.entropy_decision is not Decision.EXECUTE:
            entropy_rows = is_execute & ~floor_rows & (c >= config.entropy_threshold)
            decision[entropy_rows] = DECISIONS.index(config.entropy_decision)
            rule[entropy_rows] = RULES.index(RULE_ENTROPY)
    near = np.zeros(score.shape, dtype=bool)
    for edge in (*config.tier_bounds[:3], config.trust_floor):
        near |= (score >= edge - BOUNDARY_TOLERANCE) & (score <= edge + BOUNDARY_TOLERANCE)
    rows = np.flatnonzero(near)
    if rows.size:
        for i in rows.tolist():
            gate = CompositeTrustGate(
                InputVector(float(a[i]), float(r[i]), float(c[i])),
                config,
                calibrator,
                circuit_open=circuit_open,
            )
            raw[i], score[i] = gate.raw_trust_score, gate.trust_score
            tier[i] = TIERS.index(gate.risk_tier)
            decision[i] = DECISIONS.index(gate.decision)
            rule[i] = RULES.index(gate.rule_fired)
    return BatchResult(raw, score, tier, decision, rule, int(rows.size))
