"""Tests that kill the monitor's surviving mutants (tools/mutate.py resontinex-trust --module monitor).

The breaker and the health states are thresholds on an error rate over a window: each test puts
the rate or the sample count exactly on a threshold, where `>` and `>=` (or `>=` and `>`) differ.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from resontinex.trust import Decision, TrustConfigError, TrustInputError, TrustMonitor


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


def _events(caplog: pytest.LogCaptureFixture) -> list[tuple[int, dict[str, Any]]]:
    return [
        (r.levelno, json.loads(r.getMessage()))
        for r in caplog.records
        if r.name == "resontinex.trust.monitor"
    ]


def test_breaker_transitions_are_logged_with_their_window(
    caplog: pytest.LogCaptureFixture,
) -> None:
    monitor = _monitor(config=_config())
    with caplog.at_level(logging.INFO, logger="resontinex.trust.monitor"):
        _fail(monitor, 4)
        _ok(monitor, 4)  # 4 / 8 = 50 %: closes again
    transitions = [(lv, e) for lv, e in _events(caplog) if "breaker" in e["event"]]
    assert [(lv, e["event"]) for lv, e in transitions] == [
        (logging.CRITICAL, "trust_circuit_breaker_opened"),
        (logging.WARNING, "trust_circuit_breaker_closed"),
    ]
    assert (transitions[0][1]["window_events"], transitions[0][1]["window_errors"]) == (4, 4)
    assert (transitions[1][1]["window_events"], transitions[1][1]["window_errors"]) == (8, 4)


def test_a_failing_part_is_logged_as_an_error_with_its_type_and_context(
    caplog: pytest.LogCaptureFixture,
) -> None:
    monitor = _monitor()
    calibrator = monitor.calibrator
    assert isinstance(calibrator, FlakyCalibrator)
    calibrator.failing = True
    with (
        caplog.at_level(logging.INFO, logger="resontinex.trust.monitor"),
        pytest.raises(RuntimeError),
    ):
        monitor.evaluate(0.8, 0.3, 0.2, context={"operation_id": "op-9"})
    [(level, event)] = _events(caplog)
    assert level == logging.ERROR
    assert event["event"] == "trust_evaluation_failed"
    assert event["error"] == "calibrator down"
    assert event["error_type"] == "RuntimeError"
    assert event["context"] == {"operation_id": "op-9"}


def test_rejected_input_is_logged_as_a_warning_with_its_type(
    caplog: pytest.LogCaptureFixture,
) -> None:
    monitor = _monitor()
    with (
        caplog.at_level(logging.INFO, logger="resontinex.trust.monitor"),
        pytest.raises(TrustInputError) as info,
    ):
        monitor.evaluate(0.8, 1.5, 0.2)
    [(level, event)] = _events(caplog)
    assert level == logging.WARNING
    assert (event["event"], event["error_type"]) == ("trust_evaluation_rejected", "TrustInputError")
    assert event["error"] == str(info.value)
    assert event["context"] == {}


def test_an_evaluation_log_line_carries_inputs_scores_and_timing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    monitor = _monitor()
    with caplog.at_level(logging.INFO, logger="resontinex.trust.monitor"):
        gate = monitor.evaluate(0.8, 0.3, 0.2)
    [(level, event)] = _events(caplog)
    assert level == logging.INFO
    assert event["inputs"] == {
        "alignment_score": 0.8,
        "epistemic_risk": 0.3,
        "confidence_band": 0.2,
    }
    assert event["raw_trust_score"] == gate.raw_trust_score
    assert event["trust_score"] == gate.trust_score
    assert event["tier"] == gate.risk_tier.value
    assert event["config_hash"] == monitor.config.config_hash
    assert 0.0 <= event["elapsed_seconds"] < 60.0
    histogram_sum = monitor.registry.get_sample_value("trust_gate_evaluation_seconds_sum")
    assert histogram_sum is not None
    assert 0.0 <= histogram_sum < 60.0


def test_the_monitor_evaluates_with_its_own_config() -> None:
    monitor = _monitor(config={"trust_floor": 0.95})
    gate = monitor.evaluate(0.8, 0.3, 0.2)  # EXECUTE under the default floor of 0.6
    assert gate.config is monitor.config
    assert (gate.decision, gate.rule_fired) == (Decision.REVIEW, "trust_floor")


def test_floor_violations_count_only_scores_below_the_floor() -> None:
    monitor = _monitor()
    monitor.evaluate(0.95, 0.05, 0.05)
    assert monitor.registry.get_sample_value("trust_gate_floor_violations_total") == 0.0
    monitor.evaluate(0.62, 0.45, 0.45)
    assert monitor.registry.get_sample_value("trust_gate_floor_violations_total") == 1.0


def test_reload_resets_the_window_and_the_breaker_and_logs_the_new_config(
    caplog: pytest.LogCaptureFixture,
) -> None:
    monitor = _monitor(config=_config())
    _fail(monitor, 4)
    assert monitor.circuit_open
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="resontinex.trust.monitor"):
        new = monitor.reload_config(config=_config(min_samples=5) | {"trust_floor": 0.55})
        assert not monitor.circuit_open
        assert monitor.evaluate(0.95, 0.05, 0.05).decision is Decision.EXECUTE
    # The reload closed the breaker itself: no later "closed" transition is announced.
    assert not [e for _, e in _events(caplog) if "breaker" in e["event"]]
    assert monitor.registry.get_sample_value("trust_gate_circuit_breaker_open") == 0.0
    window = monitor.get_health_status()["window"]
    assert (window["events"], window["errors"]) == (1, 0)
    [(_, event)] = [(lv, e) for lv, e in _events(caplog) if e["event"] == "trust_config_loaded"]
    assert event["config_hash"] == new.config_hash
    _fail(monitor, 3)  # 3 / 4 events: below the new min_samples of 5
    assert not monitor.circuit_open


def test_reload_applies_the_environment_overlay() -> None:
    monitor = _monitor()
    loaded = monitor.reload_config(config={}, environment="development")
    assert loaded.environment == "development"
    assert monitor.config.trust_floor == 0.5


def test_an_empty_window_reports_zero_error_rate_and_every_setting() -> None:
    monitor = _monitor(config=_config())
    status = monitor.get_health_status()
    assert status["status"] == "healthy"
    assert status["window"] == {
        "seconds": 60.0,
        "events": 0,
        "errors": 0,
        "error_rate": 0.0,
        "enough_samples": False,
    }
    assert status["circuit_breaker"] == {
        "state": "closed",
        "error_rate_threshold": 0.5,
        "scope": "process",  # the breaker is per process, on purpose (see the package docs)
        "pid": os.getpid(),
    }
    assert status["config_version"] == monitor.config.version
    assert status["environment"] == monitor.config.environment


HELP = {
    "trust_gate_evaluation_seconds": "Wall time of one gate evaluation.",
    "trust_gate_trust_score": "Trust score the tier was judged on.",
    "trust_gate_decisions_total": "Decisions by kind.",
    "trust_gate_tier_total": "Evaluations by risk tier.",
    "trust_gate_entropy_flags_total": (
        "Evaluations whose confidence band reached the entropy threshold."
    ),
    "trust_gate_floor_violations_total": "Evaluations whose trust score was below the trust floor.",
    "trust_gate_evaluation_errors_total": (
        "Evaluations that failed inside the service (these drive health and the breaker)."
    ),
    "trust_gate_input_rejections_total": (
        "Evaluations refused because the caller's signals were invalid."
    ),
    "trust_gate_config_validation_failures_total": "Configs that failed validation.",
    "trust_gate_break_glass_total": "Break-glass attempts by outcome.",
    "trust_gate_circuit_breaker_open": "1 while the circuit breaker forces REVIEW.",
}


def test_every_metric_is_exposed_with_its_help_text() -> None:
    registry = CollectorRegistry()
    _monitor(registry=registry)
    text = generate_latest(registry).decode()
    for name, help_text in HELP.items():
        assert f"# HELP {name} {help_text}\n" in text, name


def test_histograms_use_the_documented_buckets() -> None:
    monitor = _monitor()
    monitor.evaluate(0.8, 0.3, 0.2)
    get = monitor.registry.get_sample_value
    for le in ("1e-06", "2.5e-06", "5e-06", "1e-05", "0.01", "+Inf"):
        assert get("trust_gate_evaluation_seconds_bucket", {"le": le}) is not None, le
    assert get("trust_gate_evaluation_seconds_bucket", {"le": "0.1"}) is None
    for le in ("0.05", "0.5", "0.75", "0.8", "1.0"):
        assert get("trust_gate_trust_score_bucket", {"le": le}) is not None, le
    assert get("trust_gate_trust_score_bucket", {"le": "0.8"}) == 1.0  # the score is 0.768


def test_the_metrics_hold_the_monitors_registry() -> None:
    registry = CollectorRegistry()
    assert _monitor(registry=registry).metrics.registry is registry


def test_a_passed_logger_receives_the_events(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("tests.mutants.monitor")
    monitor = _monitor(logger=logger)
    with caplog.at_level(logging.INFO, logger="tests.mutants.monitor"):
        monitor.evaluate(0.8, 0.3, 0.2)
    assert [r.name for r in caplog.records] == ["tests.mutants.monitor"]


def test_config_and_path_together_are_refused_naming_both(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    with pytest.raises(TrustConfigError) as info:
        TrustMonitor(config_path=path, config={})
    assert info.value.key_path == "config"
    assert info.value.value == path
    assert str(info.value) == f"config: pass config_path or config, not both (got {path!r})"


def test_an_invalid_config_is_logged_as_an_error_naming_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with (
        caplog.at_level(logging.INFO, logger="resontinex.trust.monitor"),
        pytest.raises(TrustConfigError),
    ):
        TrustMonitor(config={"trust_floor": 3})
    [(level, event)] = _events(caplog)
    assert (level, event["event"]) == (logging.ERROR, "trust_config_invalid")
    assert event["error"].startswith("trust_floor: ")


def test_a_config_mapping_takes_the_environment_overlay() -> None:
    monitor = _monitor(config={}, environment="development")
    assert monitor.config.environment == "development"
    assert monitor.config.trust_floor == 0.5
