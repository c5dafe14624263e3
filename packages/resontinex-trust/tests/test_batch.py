"""evaluate_batch gives the scalar path's scores, tiers, decisions and rules row by row."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resontinex.trust import (
    CalibrationAdapter,
    CompositeTrustGate,
    InputVector,
    TrustConfig,
    TrustInputError,
    TrustInputTypeError,
    evaluate_batch,
    validate_and_normalize_config,
)
from resontinex.trust.synthetic import miscalibrated_scores

np = pytest.importorskip("numpy")


def assert_matches_scalar(
    a: list[float], r: list[float], c: list[float], config: TrustConfig, calibrator: object = None
) -> None:
    result = evaluate_batch(np.array(a), np.array(r), np.array(c), config, calibrator)  # type: ignore[arg-type]
    assert len(result) == len(a)
    for i, inputs in enumerate(zip(a, r, c, strict=True)):
        gate = CompositeTrustGate(InputVector(*inputs), config, calibrator)  # type: ignore[arg-type]
        assert result.raw_trust_scores[i] == pytest.approx(
            gate.raw_trust_score, rel=1e-14, abs=1e-15
        )
        assert result.trust_scores[i] == pytest.approx(gate.trust_score, rel=1e-12, abs=1e-14)
        assert result.tiers[i] is gate.risk_tier
        assert result.decisions[i] is gate.decision
        assert result.rules[i] == gate.rule_fired


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=50),
    st.floats(0, 1),
)
def test_batch_equals_scalar(rows: list[tuple[float, float, float]], floor: float) -> None:
    config = validate_and_normalize_config({"trust_floor": floor})
    a, r, c = (list(col) for col in zip(*rows, strict=True))
    assert_matches_scalar(a, r, c, config)


def test_batch_is_exact_at_tier_edges_and_floor(
    config: TrustConfig, alignment_for_score: Callable[[float, TrustConfig], float]
) -> None:
    edges = [alignment_for_score(t, config) for t in (0.25, 0.5, 0.6, 0.75)]
    a = [x for e in edges for x in (math.nextafter(e, 0), e, math.nextafter(e, 1))]
    result = evaluate_batch(np.array(a), np.full(len(a), 0.5), np.full(len(a), 0.5), config)
    assert result.rows_rechecked >= 4
    assert_matches_scalar(a, [0.5] * len(a), [0.5] * len(a), config)


def test_batch_with_calibrator_and_circuit(config: TrustConfig) -> None:
    scores, labels = miscalibrated_scores(2000, seed=21)
    adapter = CalibrationAdapter("isotonic")
    assert adapter.fit(scores, labels)
    rng = np.random.default_rng(3)
    a, r, c = (rng.random(500).tolist() for _ in range(3))
    assert_matches_scalar(a, r, c, config, adapter)
    opened = evaluate_batch(np.array(a), np.array(r), np.array(c), config, circuit_open=True)
    assert set(opened.rules) == {"circuit_breaker"}
    assert {d.value for d in opened.decisions} == {"review"}


def test_every_decision_appears_in_a_random_batch(config: TrustConfig) -> None:
    rng = np.random.default_rng(0)
    result = evaluate_batch(rng.random(20000), rng.random(20000), rng.random(20000), config)
    assert {d.value for d in result.decisions} == {"execute", "review", "defer", "abort"}


def test_lists_are_accepted() -> None:
    result = evaluate_batch([0.8, 0.1], [0.3, 0.9], [0.2, 0.5])
    assert [d.value for d in result.decisions] == ["execute", "abort"]


@pytest.mark.parametrize(
    ("a", "error", "match"),
    [
        ([0.5, math.nan], TrustInputError, r"alignment_score\[1\]"),
        ([0.5, 1.5], TrustInputError, r"alignment_score\[1\]"),
        ([0.5, -math.inf], TrustInputError, r"alignment_score\[1\]"),
        (["a", "b"], TrustInputTypeError, "dtype"),
        ([True, False], TrustInputTypeError, "dtype"),
        ([[0.5], [0.5]], TrustInputError, "1-D"),
        ([0.5], TrustInputError, "lengths differ"),
    ],
)
def test_bad_batches_are_typed(a: list[object], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        evaluate_batch(a, [0.5, 0.5], [0.5, 0.5])


def test_empty_batch() -> None:
    result = evaluate_batch([], [], [])
    assert len(result) == 0
    assert result.decisions == []


def test_huge_batches_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import resontinex.trust.batch as batch

    monkeypatch.setattr(batch, "MAX_ROWS", 10)
    with pytest.raises(TrustInputError, match="more than 10 rows"):
        evaluate_batch(np.full(11, 0.5), np.full(11, 0.5), np.full(11, 0.5))
