"""The monitor survives endpoint outages (retry with backoff, one alert per outage), sinks that
raise, bounded memory, and a second monitor on the same metrics registry."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from hbt_core.errors import InvalidInputError
from hbt_core.monitor import Alert, MemorySink, MonitorConfig, MonitoringService
from hbt_core.production import ProductionHBT
from hbt_core.server import HTTPModel, ModelEndpoint
from hbt_core.signature import Signature
from hbt_core.verification import Calibration


def _closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://user:hunter2@127.0.0.1:{port}/?token=abc"


class _BrokenSink:
    def __init__(self) -> None:
        self.calls = 0

    async def emit(self, alert: Alert) -> None:
        self.calls += 1
        raise RuntimeError("sink is down")


def test_endpoint_outage_is_retried_alerted_once_and_recovers(
    models: dict, probes: list, reference: Signature, calibration: Calibration
) -> None:
    registry = CollectorRegistry()
    memory, broken = MemorySink(), _BrokenSink()
    cfg = MonitorConfig(
        sample_rate=0.25,
        check_interval=0.0,
        max_checks=5,
        retry_backoff=0.001,
        retry_backoff_max=0.004,
        failure_alert_after=3,
    )
    service = MonitoringService(
        HTTPModel(_closed_port_url(), timeout=2),
        reference,
        probes,
        calibration,
        cfg,
        [broken, memory],
        registry,
    )
    alerts = asyncio.run(service.run())  # used to die with EndpointError on the first check
    assert [a.kind for a in alerts] == ["endpoint_unavailable"]  # once per outage, not 3 times
    alert = alerts[0]
    assert alert.mean_similarity is None
    assert alert.check == 3
    assert "hunter2" not in alert.error
    assert "token=abc" not in alert.error
    assert memory.alerts == alerts  # delivered although the first sink raised
    assert broken.calls == 1
    assert registry.get_sample_value("hbt_monitor_endpoint_errors_total") == 5
    assert registry.get_sample_value("hbt_monitor_hook_errors_total") == 1
    assert registry.get_sample_value("hbt_monitor_checks_total") is None or (
        registry.get_sample_value("hbt_monitor_checks_total") == 0
    )
    assert len(service.history) == 0  # a failed check changes no detector state
    assert service.cusum.n == 0
    with ModelEndpoint(models["base"]) as endpoint:
        service.model = HTTPModel(endpoint.url)
        service.config = MonitorConfig(sample_rate=0.25, check_interval=0.0, max_checks=7)
        asyncio.run(service.run())
    assert service.consecutive_failures == 0
    assert registry.get_sample_value("hbt_monitor_checks_total") == 2
    assert len(service.history) == 2 * 4


def test_retry_delay_backs_off_exponentially_to_a_cap() -> None:
    cfg = MonitorConfig(retry_backoff=0.5, retry_backoff_max=3.0)
    assert [cfg.retry_delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert cfg.retry_delay(10_000) == 3.0
    with pytest.raises(InvalidInputError):
        cfg.retry_delay(0)


@pytest.mark.parametrize(
    "bad",
    [
        {"sample_rate": float("nan")},
        {"check_interval": -1.0},
        {"decay": float("inf")},
        {"horizon": 0},
        {"max_checks": 0},
        {"retry_backoff": 5.0, "retry_backoff_max": 1.0},
        {"failure_alert_after": 0},
        {"history_limit": 0},
    ],
)
def test_monitor_config_is_validated_when_built_directly(bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError, match="monitoring_config"):
        MonitorConfig(**bad)


def test_history_is_bounded_and_drift_is_still_detected(
    models: dict, probes: list, reference: Signature, calibration: Calibration
) -> None:
    with ModelEndpoint(models["base"]) as endpoint:
        cfg = MonitorConfig(sample_rate=0.5, check_interval=0.0, max_checks=6, history_limit=16)
        service = MonitoringService(HTTPModel(endpoint.url), reference, probes, calibration, cfg)
        assert asyncio.run(service.run()) == []
        assert len(service.history) == 16
        assert service.observations == 48
        endpoint.model = models["seed1"]
        service.config = MonitorConfig(
            sample_rate=0.5, check_interval=0.0, max_checks=12, history_limit=16
        )
        alerts = asyncio.run(service.run())
    assert alerts
    assert alerts[0].observations > 48
    assert len(service.history) == 16


def test_two_monitors_and_facades_share_one_registry(
    models: dict, probes: list, reference: Signature, calibration: Calibration
) -> None:
    registry = CollectorRegistry()
    cfg = MonitorConfig(sample_rate=0.25, check_interval=0.0, max_checks=1)
    first = MonitoringService(models["base"], reference, probes, calibration, cfg, (), registry)
    second = MonitoringService(models["base"], reference, probes, calibration, cfg, (), registry)
    ProductionHBT({"n_probes": 4}, registry=registry)
    ProductionHBT({"n_probes": 4}, registry=registry)  # used to raise Duplicated timeseries
    asyncio.run(first.run())
    asyncio.run(second.run())
    assert registry.get_sample_value("hbt_monitor_checks_total") == 2


def test_in_memory_records_are_bounded() -> None:
    """The same unbounded-growth pattern as the monitor history: sinks and profilers."""
    from hbt_core.performance import PerformanceOptimizer

    sink = MemorySink(max_alerts=3)
    for i in range(10):
        asyncio.run(sink.emit(Alert("sudden", i, i, 1.0, 0.5, "")))
    assert [a.check for a in sink.alerts] == [7, 8, 9]
    opt = PerformanceOptimizer(max_samples=5)
    for _ in range(20):
        with opt.profile("op"):
            pass
    assert len(opt.timings["op"]) == 5
    assert opt.summary()["op"]["count"] == 20.0
