"""Tests that kill the monitor's surviving mutants (tools/mutate.py resontinex-trust --module monitor).

The breaker and the health states are thresholds on an error rate over a window: each test puts
the rate or the sample count exactly on a threshold, where `>` and `>=` (or `>=` and `>`) differ.
"""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from resontinex.trust import Decision, TrustMonitor


class Clock:
    """A manual monotonic clock: the sliding window is tested without sleeping."""

    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


class FlakyCalibrator:
    """A calibrator that fails on demand: a failing part, the error the breaker exists for."""

    is_fitted = True

    def __init__(self) -> None:
        self.failing = False

    def predict(self, score: float) -> float | None:
        if self.failing:
            raise RuntimeError("calibrator down")
        return None  # the gate then judges the raw score


def _monitor(**kwargs: Any) -> TrustMonitor:
    return TrustMonitor(calibrator=FlakyCalibrator(), **kwargs)


def _config(**monitor: float) -> dict[str, Any]:
    settings = {
        "window_seconds": 60.0,
        "min_samples": 4,
        "degraded_error_rate": 0.1,
        "unhealthy_error_rate": 0.25,
        "circuit_breaker_error_rate": 0.5,
    }
    return {"monitor": settings | monitor}


def _fail(monitor: TrustMonitor, n: int = 1) -> None:
    calibrator = monitor.calibrator
    assert isinstance(calibrator, FlakyCalibrator)
    calibrator.failing = True
    try:
        for _ in range(n):
            with pytest.raises(RuntimeError, match="calibrator down"):
                monitor.evaluate(0.8, 0.3, 0.2)
    finally:
        calibrator.failing = False


def _ok(monitor: TrustMonitor, n: int = 1) -> None:
    for _ in range(n):
        monitor.evaluate(0.8, 0.3, 0.2)


def test_an_error_rate_exactly_at_the_breaker_threshold_keeps_it_closed() -> None:
    """`errors / events > rate` must not become `>=`: the threshold itself is still tolerated."""
    registry = CollectorRegistry()
    monitor = _monitor(config=_config(), registry=registry)
    _ok(monitor, 2)
    _fail(monitor, 2)  # 2 / 4 = 50 %, exactly the threshold
    assert not monitor.circuit_open
    assert monitor.get_health_status()["circuit_breaker"]["state"] == "closed"
    assert monitor.evaluate(0.95, 0.05, 0.05).decision is Decision.EXECUTE
    _fail(monitor, 2)  # 4 / 7 = 57 %
    assert monitor.circuit_open
    assert registry.get_sample_value("trust_gate_circuit_breaker_open") == 1.0


def test_the_breaker_needs_min_samples_and_opens_at_exactly_min_samples() -> None:
    monitor = _monitor(config=_config())
    _fail(monitor, 3)  # 100 % but only 3 events
    assert not monitor.circuit_open
    assert monitor.get_health_status()["window"]["enough_samples"] is False
    _fail(monitor)  # the 4th event: enough samples
    assert monitor.circuit_open
    status = monitor.get_health_status()
    assert status["window"]["enough_samples"] is True
    assert (status["status"], status["circuit_breaker"]["state"]) == ("unhealthy", "open")


def test_health_thresholds_are_exclusive() -> None:
    monitor = _monitor(config=_config(circuit_breaker_error_rate=0.9))
    _ok(monitor, 9)
    _fail(monitor)  # 1 / 10 = 10 %: at the degraded threshold, still healthy
    assert monitor.get_health_status()["status"] == "healthy"
    _fail(monitor)  # 2 / 11 = 18 %
    assert monitor.get_health_status()["status"] == "degraded"
    _ok(monitor)
    _fail(monitor, 2)  # 4 / 14 = 28.6 %
    assert monitor.get_health_status()["status"] == "unhealthy"


def test_health_at_exactly_the_unhealthy_rate_is_degraded() -> None:
    monitor = _monitor(config=_config(circuit_breaker_error_rate=0.9))
    _ok(monitor, 3)
    _fail(monitor)  # 1 / 4 = 25 %, exactly the unhealthy threshold
    status = monitor.get_health_status()
    assert status["status"] == "degraded"
    assert status["window"]["error_rate"] == 0.25


def test_events_older_than_the_window_fall_out_but_not_those_at_its_edge() -> None:
    clock = Clock()
    monitor = _monitor(config=_config(), clock=clock)
    _fail(monitor, 2)
    clock.now += 30.0
    _ok(monitor, 2)
    clock.now += 30.0  # the errors are exactly 60 s old: still inside the window
    window = monitor.get_health_status()["window"]
    assert (window["events"], window["errors"]) == (4, 2)
    clock.now += 0.5
    window = monitor.get_health_status()["window"]
    assert (window["events"], window["errors"]) == (2, 0)


def test_a_full_window_forgets_the_error_it_drops() -> None:
    monitor = _monitor(config=_config(window_max_events=3, min_samples=1))
    _fail(monitor)
    _ok(monitor, 2)
    assert monitor.get_health_status()["window"]["errors"] == 1
    _ok(monitor)  # the error is pushed out of the 3-event window
    window = monitor.get_health_status()["window"]
    assert (window["events"], window["errors"], window["error_rate"]) == (3, 0, 0.0)
