"""Judge drift detection: alarms on a shift, false-alarm rate bounded under no drift."""

from __future__ import annotations

import numpy as np
import pytest

from cert.coordination.drift import JudgeDriftDetector, spending_level
from cert.coordination.errors import CoordinationInputError


def test_spending_levels_sum_to_alpha() -> None:
    total = sum(spending_level(0.05, k) for k in range(1, 200_000))
    assert total == pytest.approx(0.05, rel=1e-4)
    assert total < 0.05


def test_detects_a_clear_shift_and_stays_in_alarm() -> None:
    rng = np.random.default_rng(1)
    detector = JudgeDriftDetector(alpha=0.05, reference_size=10, window_size=10, seed=1)
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
    for i in range(streams):
        detector = JudgeDriftDetector(alpha=alpha, reference_size=8, window_size=8, seed=i)
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
