"""Prometheus instruments of cert-coordination, created on a caller-supplied registry.

Every component (client, judge, baseline cache) builds a :class:`CoordinationTelemetry` on the
registry it was given; cert-runtime's :class:`~cert.runtime.metrics.MetricsFactory` returns the same
collectors for the same names, so the components share them. With ``registry=None`` the factory
uses a private registry, never the global default one.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from cert.runtime.breaker import CircuitState
from cert.runtime.metrics import MetricsFactory

BREAKER_STATE_VALUE = {
    CircuitState.CLOSED: 0.0,
    CircuitState.HALF_OPEN: 1.0,
    CircuitState.OPEN: 2.0,
}


class CoordinationTelemetry:
    """The package's metrics: API calls by status, cost, breaker state, judge and cache outcomes."""

    def __init__(self, registry: CollectorRegistry | None = None, *, enabled: bool = True) -> None:
        factory = MetricsFactory(registry, enabled=enabled)
        self.registry = factory.registry
        self.api_calls: Any = factory.counter(
            "cert_coordination_api_calls_total",
            "Messages API calls by outcome (ok, an HTTP status code, timeout, connection, "
            "circuit_open, cost_cap).",
            ["status"],
        )
        self.http_attempts: Any = factory.counter(
            "cert_coordination_http_attempts_total",
            "HTTP attempts made by the SDK including its own retries.",
        )
        self.request_seconds: Any = factory.histogram(
            "cert_coordination_request_duration_seconds",
            "Wall time of one Messages API call including SDK retries.",
            ["model"],
        )
        self.cost_usd: Any = factory.counter(
            "cert_coordination_cost_usd_total",
            "Cost of successful calls in USD by agent and model.",
            ["agent", "model"],
        )
        self.tokens: Any = factory.counter(
            "cert_coordination_tokens_total",
            "Tokens billed by kind (input, output) and model.",
            ["kind", "model"],
        )
        self.breaker_state: Any = factory.gauge(
            "cert_coordination_breaker_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
            ["breaker"],
        )
        self.rate_limit_wait_seconds: Any = factory.counter(
            "cert_coordination_rate_limit_wait_seconds_total",
            "Seconds spent waiting for the client-side rate limiter.",
        )
        self.judge_verdicts: Any = factory.counter(
            "cert_coordination_judge_verdicts_total",
            "Judge verdicts by outcome (ok, parse_failure).",
            ["outcome"],
        )
        self.judge_parse_failures: Any = factory.counter(
            "cert_coordination_judge_parse_failures_total",
            "Judge replies that could not be parsed into scores (returned as None).",
        )
        self.baseline_cache: Any = factory.counter(
            "cert_coordination_baseline_cache_total",
            "Baseline cache lookups by result (hit, miss, expired, coalesced, corrupt, quarantined).",
            ["result"],
        )
        self.drift_alarms: Any = factory.counter(
            "cert_coordination_judge_drift_alarms_total",
            "Judge-score drift alarms raised by the sequential test.",
        )

    def set_breaker_state(self, name: str, state: CircuitState) -> None:
        self.breaker_state.labels(name).set(BREAKER_STATE_VALUE[CircuitState(state)])
