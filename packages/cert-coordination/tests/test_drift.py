"""Judge drift detection: alarms on a shift, false-alarm rate bounded under no drift."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cert.coordination.drift import (
    JudgeDriftDetector,
    rank_sum_p_value,
    spending_level,
    window_for_level,
)
from cert.coordination.errors import CoordinationInputError


def test_spending_levels_sum_to_alpha() -> None:
    total = sum(spending_level(0.05, k) for k in range(1, 200_000))
    assert total == pytest.approx(0.05, rel=1e-4)
    assert total < 0.05


def test_detects_a_clear_shift_and_stays_in_alarm() -> None:
    rng = np.random.default_rng(1)
    detector = JudgeDriftDetector(alpha=0.05, reference_size=10, window_size=10)
    for score in rng.uniform(0.7, 0.9, 10):
        detector.update("task", float(score))
    for score in rng.uniform(0.2, 0.4, 10):
        status = detector.update("task", float(score))
    assert status.alarm
    assert status.alarm_at == 20
    assert detector.update("task", 0.8).alarm  # sticky
    assert not detector.status("other task").alarm


def _false_alarm_rate(streams: int, windows: int, alpha: float) -> float:
    rng = np.random.default_rng(123)
    alarms = 0
    for _ in range(streams):
        detector = JudgeDriftDetector(alpha=alpha, reference_size=8, window_size=8)
        scores = rng.beta(4, 2, 8 + 8 * windows)  # exchangeable: no drift
        alarms += any(detector.update("t", float(s)).alarm for s in scores)
    return alarms / streams


def test_false_alarm_rate_is_bounded_without_drift() -> None:
    # α = 0.2 keeps the check cheap; ≤ α in expectation, binomial slack for 150 streams.
    assert (
        _false_alarm_rate(streams=150, windows=4, alpha=0.2) <= 0.2 + 3 * (0.2 * 0.8 / 150) ** 0.5
    )


@pytest.mark.slow
def test_false_alarm_rate_is_bounded_without_drift_long_streams() -> None:
    assert _false_alarm_rate(streams=200, windows=8, alpha=0.1) <= 0.1 + 3 * (0.09 / 200) ** 0.5


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"alpha": 0}, "alpha"),
        ({"alpha": 0.9}, "alpha"),
        ({"reference_size": 1}, "reference_size"),
        ({"window_size": True}, "window_size"),
    ],
)
def test_bad_configuration(kwargs, fragment) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CoordinationInputError, match=fragment):
        JudgeDriftDetector(**kwargs)


@pytest.mark.parametrize("score", [float("nan"), -0.1, 1.1, "0.5", None])
def test_bad_scores(score) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CoordinationInputError, match="score"):
        JudgeDriftDetector().update("t", score)


@pytest.mark.parametrize("null_windows", [30, 300])
def test_a_shift_is_still_detected_after_many_windows(null_windows: int) -> None:
    # The Monte Carlo version went blind after 25 windows: its level fell below 1/20001.
    rng = np.random.default_rng(7)
    detector = JudgeDriftDetector(alpha=0.05, reference_size=10, window_size=10)
    key = ("task", "baseline")
    for score in rng.uniform(0.6, 0.9, 10):
        detector.update(key, float(score))
    while detector.status(key).tests_run < null_windows:
        assert not detector.update(key, float(rng.uniform(0.6, 0.9))).alarm
    status = detector.status(key)
    assert status.last_level is not None
    assert status.last_level < 1 / 20_001
    for score in rng.uniform(0.1, 0.3, 4 * status.next_window):
        status = detector.update(key, float(score))
        if status.alarm:
            break
    assert status.alarm
    assert status.method == "exact"
    assert status.last_p_value is not None
    assert status.last_p_value <= status.last_level


def test_the_block_grows_only_as_much_as_the_level_needs() -> None:
    assert window_for_level(10, 10, spending_level(0.05, 1)) == 10
    for k in (25, 53, 100, 10_000, 1_000_000):
        level = spending_level(0.05, k)
        size = window_for_level(10, 10, level)
        assert 2 / math.comb(10 + size, size) <= level  # reachable
        assert size == 10 or 2 / math.comb(9 + size, size - 1) > level  # and minimal


def _brute_force_p(reference: list[float], window: list[float]) -> float:
    pooled = reference + window
    ranks = [
        sum(1 for y in pooled if y < x) + (1 + sum(1 for y in pooled if y == x)) / 2 for x in pooled
    ]
    centre = len(window) * (len(pooled) + 1) / 2
    observed = abs(sum(ranks[len(reference) :]) - centre)
    subsets = list(itertools.combinations(ranks, len(window)))
    return sum(abs(sum(c) - centre) >= observed - 1e-9 for c in subsets) / len(subsets)


@settings(max_examples=60, deadline=None)
@given(
    reference=st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.6, 0.75, 1.0]), min_size=2, max_size=7),
    window=st.lists(st.floats(0, 1), min_size=2, max_size=6),
)
def test_rank_sum_p_value_is_the_exact_permutation_p_value(
    reference: list[float], window: list[float]
) -> None:
    p_value, method = rank_sum_p_value(np.asarray(reference), np.asarray(window))
    assert method == "exact"
    assert p_value == pytest.approx(_brute_force_p(reference, window), abs=1e-12)


def test_large_samples_use_the_flagged_normal_approximation() -> None:
    rng = np.random.default_rng(3)
    p_value, method = rank_sum_p_value(rng.uniform(size=400), rng.uniform(size=400))
    assert method == "normal"
    assert 0.0 < p_value <= 1.0
    assert rank_sum_p_value(np.full(400, 0.5), np.full(400, 0.5)) == (1.0, "normal")


def test_streams_are_separate_per_key() -> None:
    detector = JudgeDriftDetector(alpha=0.05, reference_size=10, window_size=10)
    for _ in range(40):
        assert not detector.update(("t", "baseline"), 0.2).alarm
        assert not detector.update(("t", "team:debate:3"), 0.9).alarm
    assert detector.status(("t", "baseline")).tests_run == 3
