"""The names and signatures that cert-trajectory and cert-coordination code against
(/work/wt/CERT_RUNTIME_CONTRACT.md at the time of writing): they must not drift."""

from __future__ import annotations

import contextvars
import inspect
import logging
from typing import Any

import pytest
import tenacity

from cert.runtime import breaker, config, errors, health, metrics, retry
from cert.runtime import logging as cert_logging


def params(fn: Any) -> list[tuple[str, Any, Any]]:
    """(name, kind, default) of each parameter, without ``self``."""
    return [
        (p.name, p.kind, p.default)
        for p in inspect.signature(fn).parameters.values()
        if p.name != "self"
    ]


P = inspect.Parameter
KW, POS, POS_ONLY = P.KEYWORD_ONLY, P.POSITIONAL_OR_KEYWORD, P.POSITIONAL_ONLY
VAR, VARKW, EMPTY = P.VAR_POSITIONAL, P.VAR_KEYWORD, P.empty


def test_errors() -> None:
    assert params(errors.CERTError.__init__) == [
        ("message", POS, EMPTY),
        ("recoverable", KW, False),
        ("retry_after", KW, None),
        ("context", KW, None),
    ]
    for name in (
        "ResourceLoadError",
        "GPUOutOfMemoryError",
        "InvalidInputError",
        "AnalysisError",
        "CERTTimeoutError",
        "CircuitOpenError",
        "RetriesExhaustedError",
        "BudgetExceededError",
    ):
        assert issubclass(getattr(errors, name), errors.CERTError)
    assert set(errors.CERTError("m").to_dict()) == {
        "type",
        "message",
        "recoverable",
        "retry_after",
        "context",
    }


def test_breaker() -> None:
    assert [s.value for s in breaker.CircuitState] == ["closed", "open", "half_open"]
    names = [(n, k) for n, k, _ in params(breaker.CircuitBreaker.__init__)]
    assert names[:7] == [
        ("name", POS),
        ("failure_threshold", KW),
        ("recovery_timeout", KW),
        ("success_threshold", KW),
        ("is_failure", KW),
        ("clock", KW),
        ("on_state_change", KW),
    ]
    defaults = {n: d for n, _, d in params(breaker.CircuitBreaker.__init__)}
    assert defaults["name"] == "default"
    assert (defaults["failure_threshold"], defaults["recovery_timeout"]) == (5, 30.0)
    assert defaults["success_threshold"] == 1
    for method in ("call", "call_async"):
        assert params(getattr(breaker.CircuitBreaker, method)) == [
            ("fn", POS_ONLY, EMPTY),
            ("args", VAR, EMPTY),
            ("kwargs", VARKW, EMPTY),
        ]
    assert inspect.iscoroutinefunction(breaker.CircuitBreaker.call_async)
    assert params(breaker.CircuitBreaker.acquire) == []
    assert params(breaker.CircuitBreaker.record_success) == []
    assert params(breaker.CircuitBreaker.record_failure) == [("exc", POS, EMPTY)]
    assert isinstance(breaker.CircuitBreaker.state, property)


@pytest.mark.parametrize(
    ("factory", "cls"),
    [(retry.retry_policy, tenacity.Retrying), (retry.async_retry_policy, tenacity.AsyncRetrying)],
)
def test_retry(factory: Any, cls: type) -> None:
    got = {n: (k, d) for n, k, d in params(factory)}
    for name, default in [
        ("max_attempts", 3),
        ("initial", 0.5),
        ("maximum", 30.0),
        ("jitter", 0.5),
        ("on_retry", None),
    ]:
        assert got[name] == (KW, default)
    assert got["retry_on"][0] == KW
    assert isinstance(factory(), cls)


def test_health() -> None:
    assert [s.value for s in health.HealthStatus] == ["healthy", "degraded", "unhealthy"]
    result = health.CheckResult("n", health.HealthStatus.HEALTHY)
    assert (result.detail, result.data) == ("", {})
    report = health.HealthReport(health.HealthStatus.HEALTHY, [result], "t")
    assert report.to_dict()["status"] == "healthy"
    assert params(health.HealthRegistry.register)[:3] == [
        ("name", POS, EMPTY),
        ("check", POS, EMPTY),
        ("critical", KW, True),
    ]
    for method in ("check", "readiness", "liveness"):
        assert params(getattr(health.HealthRegistry, method)) == []


def test_logging() -> None:
    assert isinstance(cert_logging.correlation_id, contextvars.ContextVar)
    assert issubclass(cert_logging.JsonFormatter, logging.Formatter)
    assert params(cert_logging.configure_logging)[:5] == [
        ("level", POS, None),
        ("fmt", POS, None),
        ("logger", KW, "cert"),
        ("stream", KW, None),
        ("rotate_path", KW, None),
    ]
    assert params(cert_logging.correlation_scope) == [("cid", POS, None)]
    assert callable(cert_logging.get_logger)
    assert callable(cert_logging.get_correlation_id)
    assert callable(cert_logging.redact)


def test_metrics() -> None:
    assert params(metrics.MetricsFactory.__init__) == [
        ("registry", POS, None),
        ("enabled", KW, True),
        ("namespace", KW, ""),
    ]
    assert [n for n, _, _ in params(metrics.MetricsFactory.histogram)] == [
        "name",
        "documentation",
        "labelnames",
        "buckets",
    ]


def test_config() -> None:
    s = config.RuntimeSettings()
    assert (s.log_level, s.log_format, s.metrics_enabled) == ("INFO", "json", True)
    assert (s.device, s.max_memory_gb, s.request_timeout_s) == ("auto", None, 60.0)
    assert params(config.RuntimeSettings.from_env) == [("environ", POS, None)]
    assert params(config.resolve_device) == [("device", POS, "auto")]
