"""CompositeTrustGate: three signals in, one trust score, a risk tier and a decision out.

The math (the contract, see docs/packages/resontinex-trust.md):

* each signal x in [0, 1]; alignment enters as is, epistemic risk and confidence band as 1 - x;
* clamp to [1e-6, 1 - 1e-6], take log-odds, weight (non-negative, normalised to sum 1), sum;
* raw score = sigmoid(total_logit). Clamping bounds |total_logit| by logit(1 - 1e-6) ~ 13.8, so
  ``1 / (1 + exp(-z))`` can neither overflow nor cancel there; it is also monotone in floating
  point, which the two-branch form is not at the last bit;
* the tier is judged on ``trust_score``: the calibrated score when a fitted calibrator is
  attached, else the raw score (never a rounded display value); upper bounds are inclusive.
  A calibrated score that is not a finite probability in [0, 1] (NaN, 1.7, a string) raises
  :class:`CalibratedScoreError` through :func:`check_calibrated_score`, here and in
  ``evaluate_batch`` alike: a broken calibrator never decides;
* the decision is the tier's action, then the policy: an EXECUTE whose score is below
  ``trust_floor`` becomes ``policy.below_floor`` (REVIEW), else an EXECUTE whose confidence band
  is at or above ``entropy_threshold`` becomes ``policy.entropy_flag`` (DEFER). An open circuit
  breaker (set by :class:`TrustMonitor`) turns every decision into REVIEW.

The constructor is the hot path: one tuple unpack of the pre-validated config, three logs, one
exp, a few comparisons. ``explain()`` builds the audit dict lazily.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real

from resontinex.trust.__about__ import __version__
from resontinex.trust.config import TrustConfig, default_config, validate_and_normalize_config
from resontinex.trust.errors import CalibratedScoreError, TrustInputError, TrustInputTypeError
from resontinex.trust.signals import SIGNAL_NAMES, TIERS, Decision, InputVector, RiskTier

TYPE_CHECKING = False  # typing is not imported at runtime: it costs milliseconds of import time
if TYPE_CHECKING:
    from typing import Any

    from resontinex.trust.protocols import ScoreCalibrator

__all__ = [
    "CLAMP_EPSILON",
    "CompositeTrustGate",
    "check_calibrated_score",
    "explain_schema",
    "logistic",
    "logit_contributions",
    "sigmoid",
]

CLAMP_EPSILON = 1e-6
_LOW = CLAMP_EPSILON
_HIGH = 1.0 - CLAMP_EPSILON
_log = math.log
_exp = math.exp
_EXECUTE = Decision.EXECUTE
_REVIEW = Decision.REVIEW
_BLOCK, _TIER_REVIEW, _MONITOR, _PASS = TIERS

_DIRECTIONS = ("non-decreasing", "non-increasing", "non-increasing")  # per SIGNAL_NAMES

RULE_TIER_ACTION = "tier_action"
RULE_TRUST_FLOOR = "trust_floor"
RULE_ENTROPY = "entropy_threshold"
RULE_CIRCUIT_BREAKER = "circuit_breaker"


def sigmoid(z: float) -> float:
    """The gate's sigmoid, for any real ``z``; NaN raises :class:`TrustInputError`.

    ``1 / (1 + exp(-z))`` wherever ``exp(-z)`` is finite (the gate's own logits are bounded by
    ~13.8); below about -709.78 it would overflow, and there ``exp(z)`` is the same value to
    within rounding (``1 + exp(-z)`` equals ``exp(-z)`` in floating point), still monotone.
    """
    if isinstance(z, bool) or not isinstance(z, Real):
        raise TrustInputTypeError(f"z: expected a real number, got {type(z).__name__} {z!r}")
    try:
        z = float(z)
    except OverflowError:  # an int beyond the float range
        z = math.inf if z > 0 else -math.inf
    if z != z:
        raise TrustInputError(f"z: must not be NaN, got {z!r}")
    return logistic(z)


def logistic(z: float) -> float:
    """:func:`sigmoid` without the argument checks, for callers that hold a float (Platt).

    One branch, so monotone in floating point (the two-branch ``e / (1 + e)`` steps back by an
    ulp now and then); total, because ``exp(z)`` takes over where ``exp(-z)`` overflows.
    """
    try:
        return 1.0 / (1.0 + _exp(-z))
    except OverflowError:
        return _exp(z)


def check_calibrated_score(
    value: object, raw: float, field: str = "calibrated_trust_score"
) -> float:
    """``value`` (a calibrator's answer for ``raw``) as a float in [0, 1], or raise.

    The one rule for the scalar gate and ``evaluate_batch``: NaN, infinities, values outside
    [0, 1] and non-numbers raise :class:`CalibratedScoreError`; they never pick a tier.
    """
    if type(value) is not float:
        if isinstance(value, bool) or not isinstance(value, Real):
            raise CalibratedScoreError(
                f"{field}: the calibrator returned {type(value).__name__} {value!r} for raw "
                f"score {raw!r}; expected a finite probability in [0, 1]"
            )
        try:
            value = float(value)
        except (OverflowError, TypeError, ValueError):
            raise CalibratedScoreError(
                f"{field}: the calibrator returned {value!r} for raw score {raw!r}, "
                "which is not a finite probability in [0, 1]"
            ) from None
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise CalibratedScoreError(
            f"{field}: the calibrator returned {value!r} for raw score {raw!r}; "
            "expected a finite probability in [0, 1]"
        )
    return value


def _clamp(x: float) -> float:
    return _LOW if x < _LOW else _HIGH if x > _HIGH else x


def logit_contributions(inputs: InputVector, config: TrustConfig) -> dict[str, dict[str, float]]:
    """Per signal: weight, transformed input x', its logit and weight * logit.

    The contributions, added in signal order, reproduce the gate's ``total_logit`` bit for bit.
    """
    a, r, c = inputs.alignment_score, inputs.epistemic_risk, inputs.confidence_band
    transformed = (_clamp(a), _clamp(1.0 - r), _clamp(1.0 - c))
    out: dict[str, dict[str, float]] = {}
    for name, weight, x in zip(SIGNAL_NAMES, config.weights, transformed, strict=True):
        logit = _log(x / (1.0 - x))
        out[name] = {
            "weight": weight,
            "transformed": x,
            "logit": logit,
            "contribution": weight * logit,
        }
    return out


def _coerce_inputs(inputs: object) -> InputVector:
    if isinstance(inputs, InputVector):
        return inputs
    if isinstance(inputs, Sequence) and not isinstance(inputs, str | bytes) and len(inputs) == 3:
        return InputVector(*inputs)
    raise TrustInputTypeError(
        f"inputs: expected an InputVector or a sequence of 3 signals, got {type(inputs).__name__}"
    )


class CompositeTrustGate:
    """One evaluation, computed eagerly on construction and explained lazily.

    ``config`` should be a :class:`TrustConfig` from :func:`validate_and_normalize_config`
    (a mapping is accepted and validated on the spot, which is the slow path). ``calibrator``
    is optional; when fitted, its output is the ``trust_score`` the tier is judged on.
    Results are plain slots (no per-instance dict). They are not write-protected: on
    CPython 3.11 a read-only property costs ~35 ns per read, a tenth of the 1 µs budget for
    score + tier + decision, so the gate is a record to treat as read-only; its audit value
    lives in ``explain()`` and the break-glass log, which copy what they report.
    """

    __slots__ = (
        "calibrated_trust_score",
        "calibrator",
        "config",
        "decision",
        "inputs",
        "raw_trust_score",
        "risk_tier",
        "rule_fired",
        "trust_score",
    )

    inputs: InputVector
    config: TrustConfig
    calibrator: ScoreCalibrator | None
    raw_trust_score: float
    """sigmoid(total_logit), before any calibration."""
    calibrated_trust_score: float | None
    """What the calibrator answered (checked), or None when no fitted calibrator took part."""
    trust_score: float
    """The score the tier is judged on: calibrated if a fitted calibrator is attached."""
    risk_tier: RiskTier
    decision: Decision
    rule_fired: str
    """The rule that set the decision: tier_action, trust_floor, entropy_threshold or
    circuit_breaker."""

    def __init__(
        self,
        inputs: InputVector,
        config: TrustConfig | None = None,
        calibrator: ScoreCalibrator | None = None,
        *,
        circuit_open: bool = False,
    ) -> None:
        if type(inputs) is not InputVector:
            inputs = _coerce_inputs(inputs)
        if config is None:
            config = default_config()
        elif type(config) is not TrustConfig:
            config = validate_and_normalize_config(config)
        self.inputs = inputs
        self.config = config
        self.calibrator = calibrator
        a = inputs._alignment_score
        c = inputs._confidence_band
        wa, wr, wc, b0, b1, b2, d0, d1, d2, d3, floor, entropy, d_floor, d_entropy = config.hot
        # Inline clamp + log-odds (this is the hot path; logit_contributions is the readable twin).
        # One chained range test covers the common case; only extreme inputs take the clamps.
        xa = a
        xr = 1.0 - inputs._epistemic_risk
        xc = 1.0 - c
        if not (_LOW <= xa <= _HIGH and _LOW <= xr <= _HIGH and _LOW <= xc <= _HIGH):
            xa = _LOW if xa < _LOW else _HIGH if xa > _HIGH else xa
            xr = _LOW if xr < _LOW else _HIGH if xr > _HIGH else xr
            xc = _LOW if xc < _LOW else _HIGH if xc > _HIGH else xc
        score = raw = 1.0 / (
            1.0
            + _exp(
                -(
                    wa * _log(xa / (1.0 - xa))
                    + wr * _log(xr / (1.0 - xr))
                    + wc * _log(xc / (1.0 - xc))
                )
            )
        )
        self.raw_trust_score = raw
        calibrated = None
        if calibrator is not None:
            calibrated = calibrator.predict(raw)
            if calibrated is not None:
                if not (type(calibrated) is float and 0.0 <= calibrated <= 1.0):
                    calibrated = check_calibrated_score(calibrated, raw)
                score = calibrated
        self.calibrated_trust_score = calibrated
        self.trust_score = score
        if score <= b0:
            self.risk_tier, decision = _BLOCK, d0
        elif score <= b1:
            self.risk_tier, decision = _TIER_REVIEW, d1
        elif score <= b2:
            self.risk_tier, decision = _MONITOR, d2
        else:
            self.risk_tier, decision = _PASS, d3
        rule = RULE_TIER_ACTION
        if circuit_open:
            decision, rule = _REVIEW, RULE_CIRCUIT_BREAKER
        elif decision is _EXECUTE:
            if score < floor:  # floor is -inf when the policy keeps EXECUTE (see TrustConfig.hot)
                decision, rule = d_floor, RULE_TRUST_FLOOR
            elif c >= entropy:  # entropy is +inf when the policy keeps EXECUTE
                decision, rule = d_entropy, RULE_ENTROPY
        self.decision = decision
        self.rule_fired = rule

    def __reduce__(self) -> tuple[Any, ...]:
        circuit_open = self.rule_fired == RULE_CIRCUIT_BREAKER
        return (_rebuild_gate, (self.inputs, self.config, self.calibrator, circuit_open))

    def __repr__(self) -> str:
        return (
            f"CompositeTrustGate(trust_score={self.trust_score:.6f}, tier={self.risk_tier.value}, "
            f"decision={self.decision.value}, rule={self.rule_fired})"
        )

    @property
    def total_logit(self) -> float:
        terms = logit_contributions(self.inputs, self.config)
        a, r, c = (terms[n]["contribution"] for n in SIGNAL_NAMES)
        return a + r + c

    @property
    def floor_met(self) -> bool:
        return self.trust_score >= self.config.trust_floor

    @property
    def entropy_flag(self) -> bool:
        return self.inputs.confidence_band >= self.config.entropy_threshold

    def explain(self) -> dict[str, Any]:
        """The full, JSON-serialisable account of this evaluation (schema: explain.schema.json)."""
        import datetime as dt

        config = self.config
        terms = logit_contributions(self.inputs, config)
        ca, cr, cc = (terms[n]["contribution"] for n in SIGNAL_NAMES)
        total = ca + cr + cc
        tier_index = TIERS.index(self.risk_tier)
        calibrated = self.calibrated_trust_score
        return {
            "inputs": dict(zip(SIGNAL_NAMES, self.inputs, strict=True)),
            "contributions": terms,
            "aggregation": {
                "total_logit": total,
                "raw_trust_score": self.raw_trust_score,
                "calibrated_trust_score": calibrated,
                "trust_score": self.trust_score,
                "tier_judged_on": "raw" if calibrated is None else "calibrated",
            },
            "risk_assessment": {
                "tier": self.risk_tier.value,
                "tier_bounds": {t.value: b for t, b in zip(TIERS, config.tier_bounds, strict=True)},
                "tier_action": config.tier_actions[tier_index].value,
                "decision": self.decision.value,
                "rule_fired": self.rule_fired,
                "trust_floor": config.trust_floor,
                "floor_met": self.floor_met,
                "entropy_threshold": config.entropy_threshold,
                "entropy_flag": self.entropy_flag,
                "circuit_breaker_open": self.rule_fired == RULE_CIRCUIT_BREAKER,
            },
            "observability": {
                "timestamp": dt.datetime.now(dt.timezone.utc).isoformat(),
                "config_hash": config.config_hash,
                "config_version": config.version,
                "environment": config.environment,
                "package_version": __version__,
            },
            "mathematical_guarantees": self._guarantees(),
        }

    def _guarantees(self) -> dict[str, Any]:
        """What holds for ``trust_score`` here, computed rather than asserted.

        The raw score is monotone (non-negative weights, monotone clamp, log-odds, sum and
        sigmoid, each monotone in floating point too) and a pure function of inputs and config.
        A calibrated score keeps both only if the calibrator does: a :class:`CalibrationAdapter`
        is checked on its fitted parameters; any other calibrator is "unverified".
        """
        weights = self.config.weights
        claims: dict[str, Any] = {
            "weights_non_negative_sum_to_one": all(w >= 0.0 for w in weights)
            and abs(math.fsum(weights) - 1.0) <= 1e-12,
            "clamp_epsilon": CLAMP_EPSILON,
        }
        directions = dict(zip(SIGNAL_NAMES, _DIRECTIONS, strict=True))
        if self.calibrated_trust_score is None:
            return {
                **claims,
                "monotone_in": directions,
                "deterministic": True,
                "basis": "raw score: the gate's own math",
            }
        from resontinex.trust.calibration import CalibrationAdapter

        calibrator = self.calibrator
        if isinstance(calibrator, CalibrationAdapter):
            monotone = calibrator.is_monotone
            return {
                **claims,
                "monotone_in": directions
                if monotone
                else dict.fromkeys(SIGNAL_NAMES, "not monotone"),
                "deterministic": True,
                "basis": f"calibrated score: CalibrationAdapter ({calibrator.fitted_method}), "
                f"parameters {'' if monotone else 'not '}order-preserving",
            }
        return {
            **claims,
            "monotone_in": dict.fromkeys(SIGNAL_NAMES, "unverified"),
            "deterministic": None,
            "basis": f"calibrated score: {type(calibrator).__name__} is not a CalibrationAdapter; "
            "its monotonicity and determinism are not verified",
        }


def _rebuild_gate(
    inputs: InputVector,
    config: TrustConfig,
    calibrator: ScoreCalibrator | None,
    circuit_open: bool,
) -> CompositeTrustGate:
    return CompositeTrustGate(inputs, config, calibrator, circuit_open=circuit_open)


def explain_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) every ``explain()`` result conforms to (package data)."""
    import json
    from importlib import resources

    text = (
        resources.files("resontinex.trust").joinpath("data/explain.schema.json").read_text("utf-8")
    )
    schema: dict[str, Any] = json.loads(text)
    return schema


def __getattr__(name: str) -> Any:
    # The seed imports break_glass_override from here; load it (and the audit log) on demand.
    if name == "break_glass_override":
        from resontinex.trust.breakglass import break_glass_override

        return break_glass_override
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
