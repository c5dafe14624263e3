"""The signal mapping can never buy trust: more entropy, perplexity or drift never raise it."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resontinex.pipeline import (
    MonitoredSignals,
    PipelineConfigError,
    SignalMapping,
    to_input_vector,
)
from resontinex.trust import CompositeTrustGate

entropy = st.floats(0, 20, allow_nan=False)
perplexity = st.floats(1, 1e6, allow_nan=False)
unit = st.floats(0, 1, allow_nan=False)


DEFAULT_MAPPING = SignalMapping()


def trust(signals: MonitoredSignals, mapping: SignalMapping = DEFAULT_MAPPING) -> float:
    return CompositeTrustGate(to_input_vector(signals, mapping)).trust_score


def signals(**overrides: object) -> MonitoredSignals:
    base = dict(
        mean_entropy_nats=2.0, perplexity=5.0, vocab_size=512, judge_score=None, drift_flagged=False
    )
    return MonitoredSignals(**{**base, **overrides})  # type: ignore[arg-type]


@given(entropy, entropy)
def test_more_entropy_never_raises_trust(a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert trust(signals(mean_entropy_nats=high)) <= trust(signals(mean_entropy_nats=low))


@given(perplexity, perplexity)
def test_more_perplexity_never_raises_trust(a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert trust(signals(perplexity=high)) <= trust(signals(perplexity=low))


@given(unit, unit)
def test_a_better_judge_score_never_lowers_trust(a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert trust(signals(judge_score=low)) <= trust(signals(judge_score=high))


@given(entropy, perplexity, st.floats(0, 1))
def test_drift_never_raises_trust(h: float, ppl: float, drift_risk: float) -> None:
    mapping = SignalMapping(drift_risk=drift_risk)
    calm = trust(signals(mean_entropy_nats=h, perplexity=ppl), mapping)
    drifting = trust(signals(mean_entropy_nats=h, perplexity=ppl, drift_flagged=True), mapping)
    assert drifting <= calm


def test_the_band_is_entropy_over_log_vocabulary() -> None:
    vector = to_input_vector(signals(mean_entropy_nats=math.log(512) / 2), SignalMapping())
    assert vector.confidence_band == pytest.approx(0.5)
    assert vector.epistemic_risk == pytest.approx(1 - 1 / 5)
    assert vector.alignment_score == 0.75


def test_an_empty_answer_is_the_worst_case() -> None:
    vector = to_input_vector(signals(mean_entropy_nats=None, perplexity=None), SignalMapping())
    assert (vector.confidence_band, vector.epistemic_risk) == (1.0, 1.0)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), True, "0.5"])
def test_mapping_constants_are_validated(bad: object) -> None:
    with pytest.raises(PipelineConfigError, match=r"signal_mapping\.drift_risk"):
        SignalMapping(drift_risk=bad)  # type: ignore[arg-type]
