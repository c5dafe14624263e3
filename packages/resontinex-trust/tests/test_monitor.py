"""TrustMonitor: metrics on a passed registry, JSON logs with redaction, health, circuit breaker."""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from resontinex.trust import (
    Decision,
    TrustConfigError,
    TrustInputError,
    TrustMonitor,
    validate_and_normalize_config,
)
from resontinex.trust.logs import correlation_scope


class Clock:
    """A manual monotonic clock so the sliding window can be tested without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sample(registry: CollectorRegistry, name: str, labels: dict[str, str] | None = None) -> float:
    value = registry.get_sample_value(name, labels or {})
    return 0.0 if value is None else value


@pytest.fixture
def small_window() -> dict[str, Any]:
    return {
        "monitor": {
            "window_seconds": 60.0,
            "min_samples": 10,
            "degraded_error_rate": 0.05,
            "unhealthy_error_rate": 0.2,
            "circuit_breaker_error_rate": 0.95,
        }
    }


def test_seed_usage_and_metrics() -> None:
    registry = CollectorRegistry()
    monitor = TrustMonitor(registry=registry)
    gate = monitor.evaluate(alignment_score=0.85, epistemic_risk=0.25, confidence_band=0.30)
    assert gate.decision is Decision.EXECUTE
    monitor.evaluate(alignment_score=0.97, epistemic_risk=0.03, confidence_band=0.8)  # DEFER
    monitor.evaluate(alignment_score=0.62, epistemic_risk=0.45, confidence_band=0.45)  # floor
    monitor.evaluate(alignment_score=0.1, epistemic_risk=0.9, confidence_band=0.85)  # ABORT
    assert sample(registry, "trust_gate_decisions_total", {"decision": "execute"}) == 1
    assert sample(registry, "trust_gate_decisions_total", {"decision": "defer"}) == 1
    assert sample(registry, "trust_gate_decisions_total", {"decision": "review"}) == 1
    assert sample(registry, "trust_gate_decisions_total", {"decision": "abort"}) == 1
    assert sample(registry, "trust_gate_tier_total", {"tier": "pass"}) == 2
    assert sample(registry, "trust_gate_entropy_flags_total") == 2
    assert sample(registry, "trust_gate_floor_violations_total") == 2
    assert sample(registry, "trust_gate_evaluation_seconds_count") == 4
    assert sample(registry, "trust_gate_trust_score_count") == 4
    assert sample(registry, "trust_gate_evaluation_errors_total") == 0
    text = generate_latest(registry).decode()
    assert "trust_gate_config_validation_failures_total" in text


def test_a_failing_calibrator_is_counted_as_an_error(caplog: pytest.LogCaptureFixture) -> None:
    class BrokenCalibrator:
        def predict(self, score: float) -> float | None:
            raise RuntimeError("model file vanished")

    monitor = TrustMonitor(calibrator=BrokenCalibrator())
    with (
        caplog.at_level(logging.ERROR, logger="resontinex.trust.monitor"),
        pytest.raises(RuntimeError),
    ):
        monitor.evaluate(0.8, 0.3, 0.2)
    assert sample(monitor.registry, "trust_gate_evaluation_errors_total") == 1
    assert json.loads(caplog.records[-1].getMessage())["event"] == "trust_evaluation_failed"


def test_two_monitors_have_private_registries() -> None:
    first, second = TrustMonitor(), TrustMonitor()
    first.evaluate(0.8, 0.3, 0.2)
    assert first.registry is not second.registry
    assert sample(first.registry, "trust_gate_decisions_total", {"decision": "execute"}) == 1
    assert sample(second.registry, "trust_gate_decisions_total", {"decision": "execute"}) == 0


@pytest.mark.parametrize("bad", [math.nan, 1.5, -0.2, True, "0.4", None])
def test_bad_input_is_counted_logged_and_reraised(
    bad: object, caplog: pytest.LogCaptureFixture
) -> None:
    monitor = TrustMonitor()
    with (
        caplog.at_level(logging.WARNING, logger="resontinex.trust.monitor"),
        pytest.raises(TrustInputError, match="epistemic_risk"),
    ):
        monitor.evaluate(0.5, bad, 0.5)  # type: ignore[arg-type]
    assert sample(monitor.registry, "trust_gate_input_rejections_total") == 1
    assert sample(monitor.registry, "trust_gate_evaluation_errors_total") == 0  # not a failure
    status = monitor.get_health_status()
    assert (status["rejected_count"], status["error_count"], status["window"]["events"]) == (
        1,
        0,
        0,
    )
    payload = json.loads(caplog.records[-1].getMessage())
    assert payload["event"] == "trust_evaluation_rejected"


def test_one_json_log_line_per_evaluation_with_secrets_redacted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    monitor = TrustMonitor()
    with (
        caplog.at_level(logging.INFO, logger="resontinex.trust.monitor"),
        correlation_scope("req-7"),
    ):
        monitor.evaluate(
            0.8,
            0.3,
            0.2,
            context={"operation_id": "op-1", "api_key": "sk-live-123", "auth": {"token": "t0k"}},
        )
    lines = [r.getMessage() for r in caplog.records if r.name == "resontinex.trust.monitor"]
    assert len(lines) == 1
    payload = json.loads(lines[0])
    assert payload["event"] == "trust_evaluation"
    assert payload["correlation_id"] == "req-7"
    assert payload["decision"] == "execute"
    assert payload["rule_fired"] == "tier_action"
    assert payload["context"]["operation_id"] == "op-1"
    assert payload["context"]["api_key"] == "[REDACTED]"
    assert payload["context"]["auth"]["token"] == "[REDACTED]"
    assert "sk-live-123" not in lines[0]
    assert "t0k" not in lines[0]


def failures(monitor: TrustMonitor, switch: Any, times: int) -> None:
    """``times`` evaluations that fail inside the service (the calibrator raises)."""
    switch.broken = True
    for _ in range(times):
        with pytest.raises(RuntimeError):
            monitor.evaluate(0.8, 0.3, 0.2)
    switch.broken = False


def test_health_moves_through_its_states(small_window: dict[str, Any], switch: Any) -> None:
    clock = Clock()
    monitor = TrustMonitor(config=small_window, clock=clock, calibrator=switch)
    status = monitor.get_health_status()
    assert status["status"] == "healthy"
    assert status["window"]["enough_samples"] is False
    for _ in range(19):
        monitor.evaluate(0.8, 0.3, 0.2)
    failures(monitor, switch, 1)
    assert monitor.get_health_status()["status"] == "healthy"  # 1/20 = 5 % is not above 5 %
    failures(monitor, switch, 3)
    status = monitor.get_health_status()
    assert status["status"] == "degraded"
    assert status["window"]["error_rate"] == pytest.approx(4 / 23)
    for _ in range(5):  # caller errors change nothing
        with pytest.raises(TrustInputError):
            monitor.evaluate(2.0, 0.3, 0.2)
    assert monitor.get_health_status()["window"]["error_rate"] == pytest.approx(4 / 23)
    failures(monitor, switch, 10)
    assert monitor.get_health_status()["status"] == "unhealthy"
    clock.now += 61  # the window slides past every event
    status = monitor.get_health_status()
    assert status["status"] == "healthy"
    assert status["window"]["events"] == 0
    assert status["evaluation_count"] == 33
    assert status["error_count"] == 14
    assert status["rejected_count"] == 5
    assert status["uptime_seconds"] == pytest.approx(61)
    assert status["config_hash"] == monitor.config.config_hash
    json.dumps(status)  # a plain dict, ready for an HTTP response


def test_circuit_breaker_opens_forces_review_and_recovers(
    small_window: dict[str, Any], caplog: pytest.LogCaptureFixture, switch: Any
) -> None:
    clock = Clock()
    registry = CollectorRegistry()
    monitor = TrustMonitor(config=small_window, registry=registry, clock=clock, calibrator=switch)
    with caplog.at_level(logging.WARNING, logger="resontinex.trust.monitor"):
        failures(monitor, switch, 10)
    assert monitor.circuit_open
    assert sample(registry, "trust_gate_circuit_breaker_open") == 1
    assert any("trust_circuit_breaker_opened" in r.getMessage() for r in caplog.records)
    status = monitor.get_health_status()
    assert status["status"] == "unhealthy"
    assert status["circuit_breaker"]["state"] == "open"
    # per process by design: health says which process's breaker this is
    assert (status["circuit_breaker"]["scope"], status["circuit_breaker"]["pid"]) == (
        "process",
        os.getpid(),
    )
    gate = monitor.evaluate(0.95, 0.05, 0.05)  # would EXECUTE
    assert (gate.decision, gate.rule_fired) == (Decision.REVIEW, "circuit_breaker")
    assert not monitor.circuit_open  # 10 errors in 11 events: 90.9 % is below 95 %
    assert monitor.evaluate(0.95, 0.05, 0.05).decision is Decision.EXECUTE
    assert sample(registry, "trust_gate_circuit_breaker_open") == 0


def test_window_is_capped_in_events(switch: Any) -> None:
    monitor = TrustMonitor(
        config={"monitor": {"window_max_events": 5, "min_samples": 1}}, calibrator=switch
    )
    failures(monitor, switch, 3)
    assert monitor.get_health_status()["window"]["errors"] == 3
    for _ in range(5):
        monitor.evaluate(0.8, 0.3, 0.2)
    window = monitor.get_health_status()["window"]
    assert (window["events"], window["errors"]) == (5, 0)


def test_config_failures_are_counted_and_the_old_config_kept(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    good = tmp_path / "good.yaml"
    good.write_text("trust_floor: 0.7\n")
    monitor = TrustMonitor(config_path=good, registry=registry)
    assert monitor.config.trust_floor == 0.7
    bad = tmp_path / "bad.yaml"
    bad.write_text("weights:\n  epistemic_risk: -1\n")
    with pytest.raises(TrustConfigError, match=r"weights\.epistemic_risk"):
        monitor.reload_config(bad)
    assert monitor.config.trust_floor == 0.7
    assert sample(registry, "trust_gate_config_validation_failures_total") == 1
    monitor.reload_config(config={"trust_floor": 0.5})
    assert monitor.config.trust_floor == 0.5


def test_constructor_validation(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    with pytest.raises(TrustConfigError):
        TrustMonitor(config={"trust_floor": 3}, registry=registry)
    assert sample(registry, "trust_gate_config_validation_failures_total") == 1
    with pytest.raises(TrustConfigError, match="not both"):
        TrustMonitor(config_path=tmp_path / "x.yaml", config={})
    with pytest.raises(TrustConfigError, match="cannot read"):
        TrustMonitor(config_path=tmp_path / "missing.yaml")


def test_monitor_accepts_a_validated_config_and_environment() -> None:
    cfg = validate_and_normalize_config({}, environment="production")
    assert TrustMonitor(config=cfg).config is cfg
    assert TrustMonitor(environment="development").config.trust_floor == 0.5
