"""Shared CERT infrastructure: errors, retry, circuit breaker, health, logging, metrics, config.

The submodules are the API (``cert.runtime.breaker``, ``cert.runtime.retry``, ...); the most used
names are re-exported here for convenience.
"""

from cert.runtime.__about__ import __version__
from cert.runtime.breaker import CircuitBreaker, CircuitState
from cert.runtime.config import RuntimeSettings, resolve_device
from cert.runtime.errors import (
    AnalysisError,
    BudgetExceededError,
    CERTError,
    CERTTimeoutError,
    CircuitOpenError,
    GPUOutOfMemoryError,
    InvalidInputError,
    ResourceLoadError,
    RetriesExhaustedError,
)
from cert.runtime.health import (
    CheckResult,
    HealthRegistry,
    HealthReport,
    HealthStatus,
    breaker_check,
)
from cert.runtime.logging import (
    configure_from_settings,
    configure_logging,
    correlation_scope,
    get_correlation_id,
    get_logger,
    log_event,
    redact,
)
from cert.runtime.metrics import MetricsFactory
from cert.runtime.retry import async_retry_policy, retry_policy

__all__ = [
    "AnalysisError",
    "BudgetExceededError",
    "CERTError",
    "CERTTimeoutError",
    "CheckResult",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "GPUOutOfMemoryError",
    "HealthRegistry",
    "HealthReport",
    "HealthStatus",
    "InvalidInputError",
    "MetricsFactory",
    "ResourceLoadError",
    "RetriesExhaustedError",
    "RuntimeSettings",
    "__version__",
    "async_retry_policy",
    "breaker_check",
    "configure_from_settings",
    "configure_logging",
    "correlation_scope",
    "get_correlation_id",
    "get_logger",
    "log_event",
    "redact",
    "resolve_device",
    "retry_policy",
]
