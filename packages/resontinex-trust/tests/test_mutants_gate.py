"""Tests that kill the gate's surviving mutants (tools/mutate.py resontinex-trust --module gate).

Each test pins one boundary or one piece of state that the main suite reached without checking:
the trust floor and the entropy threshold at exact equality, what a copied gate keeps, the
exported sigmoid (its refusals and its saturation), the calibrated-score check's wording and
coercion, the typed error's wording and the lazily exported break-glass function.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest

from resontinex.trust import (
    CompositeTrustGate,
    Decision,
    InputVector,
    RiskTier,
    TrustConfig,
    validate_and_normalize_config,
)
from resontinex.trust import composite_trust_gate as gate_module
from resontinex.trust.composite_trust_gate import check_calibrated_score, logistic, sigmoid
from resontinex.trust.errors import CalibratedScoreError, TrustInputError, TrustInputTypeError


def test_a_score_exactly_at_the_floor_meets_it(config: TrustConfig, fixed_calibrator: Any) -> None:
    """`score < floor` must not become `<=`: the floor is the lowest score that may EXECUTE."""
    floor = config.trust_floor
    at = CompositeTrustGate(InputVector(0.5, 0.5, 0.1), config, fixed_calibrator(floor))
    assert at.risk_tier is RiskTier.MONITOR
    assert (at.decision, at.rule_fired) == (Decision.EXECUTE, "tier_action")
    assert at.floor_met
    below = math.nextafter(floor, 0.0)
    under = CompositeTrustGate(InputVector(0.5, 0.5, 0.1), config, fixed_calibrator(below))
    assert (under.decision, under.rule_fired) == (Decision.REVIEW, "trust_floor")
    assert not under.floor_met


def test_a_band_exactly_at_the_entropy_threshold_is_flagged(config: TrustConfig) -> None:
    threshold = config.entropy_threshold
    flagged = CompositeTrustGate(InputVector(0.99, 0.01, threshold), config)
    assert flagged.trust_score >= config.trust_floor
    assert (flagged.decision, flagged.rule_fired) == (Decision.DEFER, "entropy_threshold")
    below = CompositeTrustGate(InputVector(0.99, 0.01, math.nextafter(threshold, 0.0)), config)
    assert (below.decision, below.rule_fired) == (Decision.EXECUTE, "tier_action")


def test_a_copied_gate_keeps_its_config_and_calibrator(fixed_calibrator: Any) -> None:
    cfg = validate_and_normalize_config({"trust_floor": 0.9, "weights": {"alignment_score": 2.0}})
    calibrator = fixed_calibrator(0.8)
    gate = CompositeTrustGate(InputVector(0.5, 0.5, 0.5), cfg, calibrator)
    clone = copy.deepcopy(gate)
    assert clone.config == cfg
    assert clone.config.trust_floor == 0.9
    assert clone.calibrator is not None
    assert clone.calibrator.predict(0.5) == 0.8
    assert (clone.trust_score, clone.decision, clone.rule_fired) == (
        0.8,
        Decision.REVIEW,
        "trust_floor",
    )


@pytest.mark.parametrize("z", [-30.0, -2.0, -0.5, 0.0, 0.5, 2.0, 30.0])
def test_sigmoid_is_the_logistic_function(z: float) -> None:
    assert sigmoid(z) == pytest.approx(1.0 / (1.0 + math.exp(-z)), rel=1e-15)
    assert sigmoid(z) + sigmoid(-z) == pytest.approx(1.0, abs=1e-15)


def test_sigmoid_fixed_points() -> None:
    assert sigmoid(0.0) == 0.5
    assert sigmoid(math.log(3.0)) == pytest.approx(0.75, rel=1e-15)


@pytest.mark.parametrize(("bad", "named"), [(7, "int"), ("abc", "str"), ((0.1, 0.2), "tuple")])
def test_a_wrong_input_type_names_what_it_got(bad: object, named: str) -> None:
    with pytest.raises(TrustInputTypeError, match=rf"^inputs: .*got {named}$"):
        CompositeTrustGate(bad)  # type: ignore[arg-type]


def test_break_glass_is_exported_lazily_and_other_names_are_not() -> None:
    from resontinex.trust.breakglass import break_glass_override

    assert gate_module.break_glass_override is break_glass_override
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        gate_module.no_such_name  # noqa: B018


def test_sigmoid_refusals_say_what_they_got() -> None:
    with pytest.raises(TrustInputTypeError) as refused:
        sigmoid(True)
    assert str(refused.value) == "z: expected a real number, got bool True"
    with pytest.raises(TrustInputTypeError) as refused:
        sigmoid("0.5")  # type: ignore[arg-type]
    assert str(refused.value) == "z: expected a real number, got str '0.5'"
    with pytest.raises(TrustInputError) as refused:
        sigmoid(math.nan)
    assert str(refused.value) == "z: must not be NaN, got nan"


def test_sigmoid_of_integers_beyond_the_float_range_saturates_by_sign() -> None:
    assert sigmoid(10**400) == 1.0
    assert sigmoid(-(10**400)) == 0.0


def test_logistic_below_the_overflow_point_is_exp_of_z() -> None:
    """Where exp(-z) overflows, 1 / (1 + exp(-z)) equals exp(z) to within rounding."""
    for z in (-710.0, -720.0, -745.0):
        assert logistic(z) == math.exp(z)
    assert logistic(-720.0) > 0.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.0, 0.0), (1.0, 1.0), (0.25, 0.25), (1, 1.0), (0, 0.0)],
)
def test_check_calibrated_score_accepts_probabilities_as_floats(
    value: object, expected: float
) -> None:
    checked = check_calibrated_score(value, 0.5)
    assert checked == expected
    assert type(checked) is float


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "0.5",
            "score: the calibrator returned str '0.5' for raw score 0.25; "
            "expected a finite probability in [0, 1]",
        ),
        (
            True,
            "score: the calibrator returned bool True for raw score 0.25; "
            "expected a finite probability in [0, 1]",
        ),
        (
            10**400,
            "score: the calibrator returned "
            + repr(10**400)
            + " for raw score 0.25, which is not a finite probability in [0, 1]",
        ),
        (
            1.5,
            "score: the calibrator returned 1.5 for raw score 0.25; "
            "expected a finite probability in [0, 1]",
        ),
        (
            2,
            "score: the calibrator returned 2.0 for raw score 0.25; "
            "expected a finite probability in [0, 1]",
        ),
        (
            -1e-300,
            "score: the calibrator returned -1e-300 for raw score 0.25; "
            "expected a finite probability in [0, 1]",
        ),
    ],
)
def test_check_calibrated_score_names_the_field_and_the_value(value: object, message: str) -> None:
    with pytest.raises(CalibratedScoreError) as refused:
        check_calibrated_score(value, 0.25, "score")
    assert str(refused.value) == message


def test_check_calibrated_score_names_the_gate_field_by_default() -> None:
    with pytest.raises(CalibratedScoreError, match=r"^calibrated_trust_score: .* nan "):
        check_calibrated_score(math.nan, 0.25)


def test_a_zero_weight_still_counts_as_non_negative_in_explain() -> None:
    """A signal may be switched off with weight 0; the weights are then still non-negative."""
    cfg = validate_and_normalize_config(
        {"weights": {"alignment_score": 1.0, "epistemic_risk": 0.0, "confidence_band": 0.0}}
    )
    gate = CompositeTrustGate(InputVector(0.7, 0.2, 0.1), cfg)
    assert gate.trust_score == pytest.approx(0.7)
    assert gate.explain()["mathematical_guarantees"]["weights_non_negative_sum_to_one"] is True


def test_explain_states_the_basis_of_its_claims(fixed_calibrator: Any) -> None:
    """The basis tells an auditor why the monotonicity claims hold (or are not made)."""
    from resontinex.trust.calibration import CalibrationAdapter

    inputs = InputVector(0.8, 0.3, 0.2)

    def basis(calibrator: Any = None) -> str:
        gate = CompositeTrustGate(inputs, None, calibrator)
        text: str = gate.explain()["mathematical_guarantees"]["basis"]
        return text

    assert basis() == "raw score: the gate's own math"
    assert basis(fixed_calibrator(0.4)) == (
        "calibrated score: FixedCalibrator is not a CalibrationAdapter; "
        "its monotonicity and determinism are not verified"
    )
    adapter = CalibrationAdapter("platt")
    assert adapter.fit([i / 200 for i in range(200)], [int(i > 90) for i in range(200)])
    assert basis(adapter) == (
        "calibrated score: CalibrationAdapter (platt), parameters order-preserving"
    )
    adapter.platt = (-1.0, 0.0)  # edited by hand: no longer order-preserving
    assert basis(adapter) == (
        "calibrated score: CalibrationAdapter (platt), parameters not order-preserving"
    )


def test_a_refused_calibrated_score_names_the_raw_score(
    config: TrustConfig, fixed_calibrator: Any
) -> None:
    with pytest.raises(CalibratedScoreError) as refused:
        CompositeTrustGate(InputVector(0.5, 0.5, 0.5), config, fixed_calibrator(math.nan))
    assert str(refused.value) == (
        "calibrated_trust_score: the calibrator returned nan for raw score 0.5; "
        "expected a finite probability in [0, 1]"
    )
