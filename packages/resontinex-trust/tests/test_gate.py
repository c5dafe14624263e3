"""The gate's math contract: golden values, monotonicity, tier edges, decisions and rules."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resontinex.trust import (
    CalibrationAdapter,
    CompositeTrustGate,
    Decision,
    InputVector,
    RiskTier,
    TrustConfig,
    explain_schema,
    route_to_resontinex,
    validate_and_normalize_config,
)
from resontinex.trust.composite_trust_gate import break_glass_override

SIGNALS = ("alignment_score", "epistemic_risk", "confidence_band")
probability = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
weight = st.floats(min_value=0.0, max_value=100.0, allow_nan=False)


@st.composite
def configs(draw: st.DrawFn) -> TrustConfig:
    weights = [draw(weight) for _ in range(3)]
    if sum(weights) == 0:
        weights[0] = 1.0
    bounds = sorted(draw(st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3, unique=True)))
    decisions = st.sampled_from(["execute", "review", "defer", "abort"])
    return validate_and_normalize_config(
        {
            "weights": dict(zip(SIGNALS, weights, strict=True)),
            "risk_tiers": {
                "block": bounds[0],
                "review": bounds[1],
                "monitor": bounds[2],
                "pass": 1.01,
            },
            "tier_actions": {t: draw(decisions) for t in ("block", "review", "monitor", "pass")},
            "trust_floor": draw(probability),
            "entropy_threshold": draw(probability),
        }
    )


def test_golden_values(config: TrustConfig) -> None:
    assert CompositeTrustGate(InputVector(0.5, 0.5, 0.5), config).raw_trust_score == 0.5
    gate = CompositeTrustGate(InputVector(0.8, 0.3, 0.2), config)
    assert gate.raw_trust_score == pytest.approx(0.7681, abs=1e-4)
    assert gate.trust_score == gate.raw_trust_score
    assert gate.risk_tier is RiskTier.PASS
    assert gate.decision is Decision.EXECUTE


def test_seed_examples_work_as_written() -> None:
    gate = CompositeTrustGate(inputs=InputVector(0.8, 0.3, 0.2))
    assert gate.decision.value == "execute"
    assert gate.decision == "execute"
    assert route_to_resontinex(gate.decision) == "execute"
    assert callable(break_glass_override)


def test_weights_are_normalised(config: TrustConfig) -> None:
    doubled = validate_and_normalize_config(
        {"weights": {"alignment_score": 0.9, "epistemic_risk": 0.7, "confidence_band": 0.4}}
    )
    assert doubled.weights == pytest.approx(config.weights, abs=1e-15)
    assert math.fsum(doubled.weights) == pytest.approx(1.0, abs=1e-15)
    inputs = InputVector(0.7, 0.2, 0.4)
    assert CompositeTrustGate(inputs, doubled).raw_trust_score == pytest.approx(
        CompositeTrustGate(inputs, config).raw_trust_score, abs=1e-15
    )


def test_clamping_keeps_extremes_finite(config: TrustConfig) -> None:
    top = CompositeTrustGate(InputVector(1.0, 0.0, 0.0), config)
    bottom = CompositeTrustGate(InputVector(0.0, 1.0, 1.0), config)
    assert top.raw_trust_score == pytest.approx(1 - 1e-6, rel=1e-9)
    assert bottom.raw_trust_score == pytest.approx(1e-6, rel=1e-6)
    assert top.decision is Decision.EXECUTE
    assert bottom.decision is Decision.ABORT


@settings(max_examples=300, deadline=None)
@given(configs(), probability, probability, probability, probability)
def test_monotone_in_every_signal(
    cfg: TrustConfig, a: float, r: float, c: float, other: float
) -> None:
    base = CompositeTrustGate(InputVector(a, r, c), cfg).raw_trust_score
    hi_a = CompositeTrustGate(InputVector(max(a, other), r, c), cfg).raw_trust_score
    lo_a = CompositeTrustGate(InputVector(min(a, other), r, c), cfg).raw_trust_score
    assert lo_a <= base <= hi_a
    hi_r = CompositeTrustGate(InputVector(a, max(r, other), c), cfg).raw_trust_score
    lo_r = CompositeTrustGate(InputVector(a, min(r, other), c), cfg).raw_trust_score
    assert hi_r <= base <= lo_r
    hi_c = CompositeTrustGate(InputVector(a, r, max(c, other)), cfg).raw_trust_score
    lo_c = CompositeTrustGate(InputVector(a, r, min(c, other)), cfg).raw_trust_score
    assert hi_c <= base <= lo_c


@settings(max_examples=200, deadline=None)
@given(configs(), probability, probability, probability, probability)
def test_tier_is_monotone_in_alignment(
    cfg: TrustConfig, a: float, b: float, r: float, c: float
) -> None:
    order = list(RiskTier)
    low = CompositeTrustGate(InputVector(min(a, b), r, c), cfg)
    high = CompositeTrustGate(InputVector(max(a, b), r, c), cfg)
    assert order.index(low.risk_tier) <= order.index(high.risk_tier)


@settings(max_examples=200, deadline=None)
@given(configs(), probability, probability, probability)
def test_contributions_sum_to_total_logit(cfg: TrustConfig, a: float, r: float, c: float) -> None:
    gate = CompositeTrustGate(InputVector(a, r, c), cfg)
    explanation = gate.explain()
    parts = explanation["contributions"]
    total = explanation["aggregation"]["total_logit"]
    summed = sum(parts[name]["contribution"] for name in parts)
    assert summed == total == gate.total_logit
    assert 1.0 / (1.0 + math.exp(-total)) == gate.raw_trust_score


@pytest.mark.parametrize(
    ("edge", "at_edge", "above_edge"),
    [
        (0.25, RiskTier.BLOCK, RiskTier.REVIEW),
        (0.50, RiskTier.REVIEW, RiskTier.MONITOR),
        (0.75, RiskTier.MONITOR, RiskTier.PASS),
    ],
)
def test_tier_edges_are_inclusive_upper_bounds(
    config: TrustConfig,
    alignment_for_score: Callable[[float, TrustConfig], float],
    edge: float,
    at_edge: RiskTier,
    above_edge: RiskTier,
) -> None:
    a = alignment_for_score(edge, config)
    exact = CompositeTrustGate(InputVector(a, 0.5, 0.5), config)
    assert exact.raw_trust_score == edge  # a real input lands exactly on the bound
    assert exact.risk_tier is at_edge
    above = math.nextafter(a, 1.0)
    for _ in range(10_000):  # several alignments can share one score; step to the first above
        after = CompositeTrustGate(InputVector(above, 0.5, 0.5), config)
        if after.raw_trust_score > edge:
            break
        assert after.risk_tier is at_edge
        above = math.nextafter(above, 1.0)
    assert after.raw_trust_score > edge
    assert after.risk_tier is above_edge
    before = CompositeTrustGate(InputVector(math.nextafter(a, 0.0), 0.5, 0.5), config)
    assert before.raw_trust_score < edge
    assert before.risk_tier is at_edge


@pytest.mark.parametrize(
    ("score", "tier"),
    [
        (0.0, RiskTier.BLOCK),
        (0.25, RiskTier.BLOCK),
        (math.nextafter(0.25, 1), RiskTier.REVIEW),
        (0.5, RiskTier.REVIEW),
        (math.nextafter(0.5, 1), RiskTier.MONITOR),
        (0.75, RiskTier.MONITOR),
        (math.nextafter(0.75, 1), RiskTier.PASS),
        (1.0, RiskTier.PASS),
    ],
)
def test_tier_is_judged_on_the_calibrated_score(
    config: TrustConfig, fixed_calibrator: Any, score: float, tier: RiskTier
) -> None:
    gate = CompositeTrustGate(InputVector(0.5, 0.5, 0.5), config, fixed_calibrator(score))
    assert gate.trust_score == score
    assert gate.raw_trust_score == 0.5
    assert gate.risk_tier is tier
    assert gate.explain()["aggregation"]["tier_judged_on"] == "calibrated"


def test_unfitted_calibrator_falls_back_to_raw(config: TrustConfig) -> None:
    gate = CompositeTrustGate(InputVector(0.8, 0.3, 0.2), config, CalibrationAdapter())
    assert gate.trust_score == gate.raw_trust_score
    assert gate.calibrated_trust_score is None
    assert gate.explain()["aggregation"]["tier_judged_on"] == "raw"


@pytest.mark.parametrize(
    ("inputs", "decision", "rule"),
    [
        ((0.92, 0.08, 0.10), Decision.EXECUTE, "tier_action"),
        ((0.70, 0.40, 0.35), Decision.EXECUTE, "tier_action"),
        ((0.62, 0.45, 0.45), Decision.REVIEW, "trust_floor"),
        ((0.45, 0.55, 0.50), Decision.REVIEW, "tier_action"),
        ((0.97, 0.03, 0.80), Decision.DEFER, "entropy_threshold"),
        ((0.10, 0.90, 0.85), Decision.ABORT, "tier_action"),
    ],
)
def test_every_decision_is_reachable_and_explained(
    config: TrustConfig, inputs: tuple[float, float, float], decision: Decision, rule: str
) -> None:
    gate = CompositeTrustGate(InputVector(*inputs), config)
    assert gate.decision is decision
    assert gate.rule_fired == rule
    risk = gate.explain()["risk_assessment"]
    assert risk["decision"] == decision.value
    assert risk["rule_fired"] == rule
    assert risk["floor_met"] == (gate.trust_score >= config.trust_floor)
    assert risk["entropy_flag"] == (inputs[2] >= config.entropy_threshold)


def test_floor_rule_takes_precedence_over_entropy(config: TrustConfig) -> None:
    gate = CompositeTrustGate(InputVector(0.68, 0.40, 0.75), config)
    assert gate.risk_tier is RiskTier.MONITOR
    assert gate.trust_score < config.trust_floor
    assert gate.entropy_flag
    assert (gate.decision, gate.rule_fired) == (Decision.REVIEW, "trust_floor")


def test_policy_is_configurable() -> None:
    cfg = validate_and_normalize_config(
        {"policy": {"below_floor": "execute", "entropy_flag": "abort"}, "trust_floor": 0.9}
    )
    below_floor = CompositeTrustGate(InputVector(0.8, 0.3, 0.2), cfg)
    assert below_floor.trust_score < 0.9
    assert below_floor.decision is Decision.EXECUTE
    entropic = CompositeTrustGate(InputVector(0.97, 0.03, 0.80), cfg)
    assert (entropic.decision, entropic.rule_fired) == (Decision.ABORT, "entropy_threshold")


def test_tier_actions_can_map_to_defer() -> None:
    cfg = validate_and_normalize_config({"tier_actions": {"review": "defer"}})
    gate = CompositeTrustGate(InputVector(0.45, 0.55, 0.5), cfg)
    assert (gate.risk_tier, gate.decision, gate.rule_fired) == (
        RiskTier.REVIEW,
        Decision.DEFER,
        "tier_action",
    )


def test_circuit_open_forces_review(config: TrustConfig) -> None:
    gate = CompositeTrustGate(InputVector(0.92, 0.08, 0.1), config, circuit_open=True)
    assert (gate.decision, gate.rule_fired) == (Decision.REVIEW, "circuit_breaker")
    assert gate.explain()["risk_assessment"]["circuit_breaker_open"] is True


@settings(max_examples=100, deadline=None)
@given(configs(), probability, probability, probability)
def test_every_explanation_matches_the_schema(
    cfg: TrustConfig, a: float, r: float, c: float
) -> None:
    explanation = CompositeTrustGate(InputVector(a, r, c), cfg).explain()
    jsonschema.validate(json.loads(json.dumps(explanation, allow_nan=False)), explain_schema())


def test_explanation_observability(config: TrustConfig) -> None:
    obs = CompositeTrustGate(InputVector(0.8, 0.3, 0.2), config).explain()["observability"]
    assert obs["config_hash"] == config.config_hash
    assert len(obs["config_hash"]) == 12
    assert obs["timestamp"].endswith("+00:00")
    assert obs["package_version"]


def test_calibrated_explanation_matches_schema(config: TrustConfig) -> None:
    adapter = CalibrationAdapter.from_json(
        json.dumps(
            {
                "format": "resontinex-trust/calibrator",
                "format_version": 1,
                "method": "isotonic",
                "fitted_method": "isotonic",
                "platt": None,
                "knots_x": [0.2, 0.9],
                "knots_y": [0.1, 0.6],
                "min_samples": 50,
                "isotonic_min_samples": 500,
            }
        )
    )
    gate = CompositeTrustGate(InputVector(0.8, 0.3, 0.2), config, adapter)
    explanation = gate.explain()
    jsonschema.validate(explanation, explain_schema())
    assert explanation["aggregation"]["calibrated_trust_score"] == gate.trust_score
    assert gate.trust_score == pytest.approx(0.1 + (0.7681056815427151 - 0.2) / 0.7 * 0.5)


def test_gate_is_a_small_slotted_record(config: TrustConfig) -> None:
    gate = CompositeTrustGate(InputVector(0.8, 0.3, 0.2), config)
    with pytest.raises(AttributeError):
        gate.extra = 1  # type: ignore[attr-defined]
    assert not hasattr(gate, "__dict__")
    assert sys.getsizeof(gate) < 1024


def test_gate_round_trips_through_copy(config: TrustConfig) -> None:
    import copy

    gate = CompositeTrustGate(InputVector(0.9, 0.1, 0.1), config, circuit_open=True)
    clone = copy.deepcopy(gate)
    assert (clone.trust_score, clone.decision, clone.rule_fired) == (
        gate.trust_score,
        gate.decision,
        gate.rule_fired,
    )


def test_gate_accepts_a_plain_sequence_and_a_mapping_config() -> None:
    gate = CompositeTrustGate((0.8, 0.3, 0.2), {"trust_floor": 0.9})  # type: ignore[arg-type]
    assert gate.decision is Decision.REVIEW
    assert gate.rule_fired == "trust_floor"


def test_route_to_resontinex_maps_every_decision() -> None:
    assert {d: route_to_resontinex(d) for d in Decision} == {
        Decision.EXECUTE: "execute",
        Decision.REVIEW: "review",
        Decision.DEFER: "defer",
        Decision.ABORT: "abort",
    }
    assert route_to_resontinex("defer") == "defer"
    assert route_to_resontinex("ABORT") == "abort"


@pytest.fixture(scope="module")
def fitted_calibrators() -> dict[str, CalibrationAdapter]:
    from resontinex.trust.synthetic import miscalibrated_scores

    scores, labels = miscalibrated_scores(3000, seed=77)
    out = {}
    for method in ("platt", "isotonic"):
        adapter = CalibrationAdapter(method)
        assert adapter.fit(scores, labels)
        out[method] = adapter
    return out


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["platt", "isotonic"]), probability, probability, probability, probability)
def test_calibrated_gate_stays_monotone(
    fitted_calibrators: dict[str, CalibrationAdapter],
    method: str,
    a: float,
    r: float,
    c: float,
    other: float,
) -> None:
    calibrator = fitted_calibrators[method]

    def score(a_: float, r_: float, c_: float) -> float:
        return CompositeTrustGate(InputVector(a_, r_, c_), calibrator=calibrator).trust_score

    base = score(a, r, c)
    assert score(min(a, other), r, c) <= base <= score(max(a, other), r, c)
    assert score(a, max(r, other), c) <= base <= score(a, min(r, other), c)
    assert score(a, r, max(c, other)) <= base <= score(a, r, min(c, other))
