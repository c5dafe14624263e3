"""Health, metrics, logging and plotting around the monitor."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from cert.runtime.health import HealthStatus
from cert.runtime.logging import configure_logging, correlation_scope
from cert.trajectory import HamiltonianMonitor, TrajectoryConfig, plot

CONFIG = TrajectoryConfig(max_mean_entropy=2.0, max_new_tokens=8)


@pytest.fixture
def fixed_monitor(make_fixed: Callable[..., tuple[Any, Any]]) -> HamiltonianMonitor:
    model, tokenizer = make_fixed()
    return HamiltonianMonitor(model=model, tokenizer=tokenizer, config=CONFIG)


def test_health_is_cheap_unless_deep(fixed_monitor: HamiltonianMonitor) -> None:
    assert fixed_monitor.health_check().status == HealthStatus.UNHEALTHY  # not loaded yet
    fixed_monitor.load()
    model = fixed_monitor._model
    calls = model.forward_calls
    assert fixed_monitor.health_check().status == HealthStatus.HEALTHY
    assert model.forward_calls == calls  # no generation for the cheap check
    deep = fixed_monitor.health_check(deep=True)
    assert deep.status == HealthStatus.HEALTHY
    assert "generation_probe" in [c.name for c in deep.checks]
    assert model.forward_calls > calls


def test_metrics_on_a_given_registry_and_two_monitors_coexist(
    make_fixed: Callable[..., tuple[Any, Any]],
) -> None:
    registry = CollectorRegistry()
    monitors = []
    for _ in range(2):
        model, tokenizer = make_fixed()
        monitors.append(
            HamiltonianMonitor(
                model=model, tokenizer=tokenizer, config=CONFIG, registry=registry, preload=True
            )
        )
    monitors[0].analyze("t1")
    monitors[1].analyze("t1")
    monitors[1].analyze("t1")  # cache hit
    strict = TrajectoryConfig(max_mean_entropy=0.5, max_new_tokens=8)
    monitors[0].analyze("t1", config=strict)
    value = registry.get_sample_value
    assert value("cert_trajectory_analyses_total", {"mode": "generate", "outcome": "passed"}) == 2
    assert value("cert_trajectory_analyses_total", {"mode": "generate", "outcome": "failed"}) == 1
    assert value("cert_trajectory_quality_failures_total", {"check": "mean_entropy"}) == 1
    assert value("cert_trajectory_cache_hits_total") == 1
    assert value("cert_trajectory_token_entropy_nats_count") == 9  # 3 analyses × 3 tokens
    assert value("cert_trajectory_analysis_duration_seconds_count", {"mode": "generate"}) == 3


def test_metrics_can_be_disabled(make_fixed: Callable[..., tuple[Any, Any]]) -> None:
    model, tokenizer = make_fixed()
    monitor = HamiltonianMonitor(
        model=model, tokenizer=tokenizer, config=CONFIG, metrics_enabled=False, preload=True
    )
    assert monitor.analyze("t1").passed_quality_check


@pytest.mark.parametrize("level", ["DEBUG", "INFO"])
def test_info_and_debug_logging_emit_json_with_correlation_id(
    fixed_monitor: HamiltonianMonitor, level: str
) -> None:
    stream = io.StringIO()
    configure_logging(level, "json", logger="cert", stream=stream)
    try:
        fixed_monitor.load()
        with correlation_scope("req-123"):
            fixed_monitor.analyze("t1")
    finally:
        configure_logging("WARNING", "json", logger="cert", stream=io.StringIO())
    records = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    analysed = [r for r in records if "trajectory analysed" in json.dumps(r)]
    assert analysed
    assert analysed[-1].get("correlation_id") == "req-123"
    assert "t1" not in json.dumps(analysed[-1])  # prompt text is not logged, only its length


def test_plot_writes_a_png(fixed_monitor: HamiltonianMonitor, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    fixed_monitor.load()
    path = plot(fixed_monitor.analyze("t1"), tmp_path / "sub" / "trajectory.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_hung_generation_probe_is_one_pending_worker_not_one_per_call(
    make_fixed: Callable[..., tuple[Any, Any]],
) -> None:
    import threading

    release = threading.Event()
    base = type(make_fixed()[0])  # the fixed-logit model class of conftest

    class Stuck(base):  # type: ignore[valid-type,misc]
        def forward(self, input_ids: Any, attention_mask: Any = None, **kwargs: Any) -> Any:
            release.wait(10)
            return super().forward(input_ids, attention_mask, **kwargs)

    model, tokenizer = make_fixed(cls=Stuck)
    monitor = HamiltonianMonitor(
        model=model, tokenizer=tokenizer, config=CONFIG, preload=True, timeout=0.01
    )
    before = threading.active_count()
    try:
        reports = [monitor.health_check(deep=True) for _ in range(30)]
        during = threading.active_count()
    finally:
        release.set()
    assert during - before <= 1  # a new registry per call used to leave one blocked thread each
    for report in reports:
        probe = {c.name: c for c in report.checks}["generation_probe"]
        assert report.status == HealthStatus.UNHEALTHY
        assert probe.data["pending"] is True
