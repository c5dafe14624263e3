"""Monitoring against a real HTTP model endpoint on 127.0.0.1 whose model is swapped mid-run."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from hbt_core.errors import EndpointError, InvalidInputError
from hbt_core.monitor import MemorySink, MonitorConfig, MonitoringService, WebhookSink
from hbt_core.production import ProductionHBT
from hbt_core.server import HTTPModel, ModelEndpoint
from hbt_core.signature import Signature
from hbt_core.verification import Calibration


class _Collector:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                n = int(self.headers["Content-Length"])
                collector.bodies.append(json.loads(self.rfile.read(n)))
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_swap_mid_run_raises_alert(
    models: dict, probes: list, reference: Signature, calibration: Calibration
) -> None:
    registry = CollectorRegistry()
    memory = MemorySink()
    hook = _Collector()
    remediated: list[str] = []
    with ModelEndpoint(models["base"]) as endpoint:
        client = HTTPModel(endpoint.url)
        cfg = MonitorConfig(sample_rate=0.5, check_interval=0.0, max_checks=6)
        service = MonitoringService(
            client,
            reference,
            probes,
            calibration,
            cfg,
            [memory, WebhookSink(hook.url)],
            registry,
            remediation=lambda a: remediated.append(a.kind),
        )
        quiet = asyncio.run(service.run())
        assert quiet == []
        endpoint.model = models["seed1"]
        service.config = MonitorConfig(sample_rate=0.5, check_interval=0.0, max_checks=12)
        alerts = asyncio.run(service.run())
    hook.close()
    assert alerts, "swapping the served model must raise an alert"
    assert alerts[0].check > 6
    assert alerts[0].served_by == "seed1"
    assert alerts[0].variance_ratio > 0
    assert memory.alerts == alerts
    assert remediated
    assert hook.bodies
    assert hook.bodies[0]["served_by"] == "seed1"
    assert registry.get_sample_value("hbt_monitor_checks_total") == 12
    assert service.bundle_similarity() < 0.99  # the decayed running bundle moved away
    assert registry.get_sample_value("hbt_monitor_alerts_total", {"kind": alerts[0].kind}) >= 1


def test_facade_monitoring_and_config_errors(
    models: dict, reference: Signature, calibration: Calibration
) -> None:
    hbt = ProductionHBT({"n_probes": 16}, registry=CollectorRegistry())
    with ModelEndpoint(models["base"]) as endpoint:
        alerts = asyncio.run(
            hbt.continuous_model_monitoring(
                model_endpoint=endpoint.url,
                monitoring_config={
                    "sample_rate": 0.25,
                    "check_interval": 0.0,
                    "max_checks": 3,
                    "alert_channels": ["log", "memory"],
                },
                reference=reference,
                calibration=calibration,
            )
        )
    assert alerts == []
    for bad in (
        {"sample_rate": 0.0},
        {"sample_rate": "high"},
        {"unknown": 1},
        {"alert_channels": ["email"]},
    ):
        with pytest.raises(InvalidInputError):
            asyncio.run(
                hbt.continuous_model_monitoring(
                    model_endpoint="http://127.0.0.1:9",
                    monitoring_config={"max_checks": 1, **bad},
                    reference=reference,
                    calibration=calibration,
                )
            )


def test_endpoint_errors(models: dict) -> None:
    with pytest.raises(InvalidInputError):
        HTTPModel("ftp://x")
    with ModelEndpoint(models["base"]) as endpoint:
        url = endpoint.url
        with pytest.raises(EndpointError):
            HTTPModel(url + "/missing").next_token_distributions(b"x", 1)
    with pytest.raises(EndpointError):
        HTTPModel(url, timeout=1).next_token_distributions(b"x", 1)
