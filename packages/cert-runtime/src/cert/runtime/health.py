"""Named health checks aggregated into one healthy / degraded / unhealthy verdict.

Aggregation rules (documented in docs/packages/cert-runtime.md):

* a check may return a :class:`CheckResult`, a :class:`HealthStatus` or a bool
  (``True`` = healthy, ``False`` = unhealthy);
* a check that raises is UNHEALTHY if critical, DEGRADED if not; its detail names the error;
* the report is UNHEALTHY if any critical check is unhealthy; otherwise DEGRADED if any check is
  degraded or any non-critical check is unhealthy; otherwise HEALTHY (also when there are none).

``readiness()`` runs every check (can this process serve traffic?); ``liveness()`` runs only the
checks registered with ``liveness=True`` (is the process itself alive?), so a down dependency
makes a pod unready without getting it restarted.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from cert.runtime._validate import callable_arg, non_empty_str, non_negative_float
from cert.runtime.breaker import CircuitBreaker, CircuitState
from cert.runtime.errors import CERTTimeoutError, InvalidInputError
from cert.runtime.logging import redact

__all__ = [
    "CheckResult",
    "HealthRegistry",
    "HealthReport",
    "HealthStatus",
    "aggregate",
    "breaker_check",
]

_log = logging.getLogger("cert.runtime.health")


class HealthStatus(str, Enum):
    """The three verdicts, ordered from best to worst."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


@dataclass
class CheckResult:
    """The outcome of one named check."""

    name: str
    status: HealthStatus
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    critical: bool = True
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = self.status.value
        return out


@dataclass
class HealthReport:
    """The aggregated verdict with every check that produced it."""

    status: HealthStatus
    checks: list[CheckResult]
    timestamp: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "checks": [check.to_dict() for check in self.checks],
            "timestamp": self.timestamp,
        }


CheckFn = Callable[[], "CheckResult | HealthStatus | bool"]


@dataclass(frozen=True)
class _Registered:
    check: CheckFn
    critical: bool
    liveness: bool
    timeout_s: float | None


def aggregate(checks: Iterable[CheckResult]) -> HealthStatus:
    """Apply the aggregation rules of this module to finished check results."""
    verdict = HealthStatus.HEALTHY
    for result in checks:
        if result.status is HealthStatus.UNHEALTHY and result.critical:
            return HealthStatus.UNHEALTHY
        if result.status is not HealthStatus.HEALTHY:
            verdict = HealthStatus.DEGRADED
    return verdict


class HealthRegistry:
    """A thread-safe set of named checks; each run calls them in registration order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._checks: dict[str, _Registered] = {}

    def register(
        self,
        name: str,
        check: CheckFn,
        *,
        critical: bool = True,
        liveness: bool = False,
        timeout_s: float | None = None,
    ) -> None:
        """Add a check; a name can be registered once (unregister it first to replace it).

        With ``timeout_s`` the check runs in a daemon thread and counts as failed (a
        ``CERTTimeoutError``) if it has not answered in time; the thread is abandoned, not killed.
        """
        non_empty_str("name", name)
        callable_arg("check", check)
        if timeout_s is not None:
            non_negative_float("timeout_s", timeout_s)
        with self._lock:
            if name in self._checks:
                raise InvalidInputError(
                    f"health check {name!r} is already registered",
                    context={"field": "name", "value": name},
                )
            self._checks[name] = _Registered(check, bool(critical), bool(liveness), timeout_s)

    def unregister(self, name: str) -> None:
        """Remove a check; unknown names raise :class:`InvalidInputError`."""
        with self._lock:
            if self._checks.pop(name, None) is None:
                raise InvalidInputError(
                    f"no health check named {name!r}", context={"field": "name", "value": name}
                )

    @property
    def names(self) -> list[str]:
        with self._lock:
            return list(self._checks)

    def check(self) -> HealthReport:
        """Run every check and aggregate."""
        return self._run(lambda entry: True)

    def readiness(self) -> HealthReport:
        """Can this process serve traffic? Runs every check."""
        return self.check()

    def liveness(self) -> HealthReport:
        """Is the process alive? Runs only the checks registered with ``liveness=True``."""
        return self._run(lambda entry: entry.liveness)

    def _run(self, select: Callable[[_Registered], bool]) -> HealthReport:
        with self._lock:
            selected = [(name, entry) for name, entry in self._checks.items() if select(entry)]
        # Checks run outside the lock: a slow check must not block registration or other runs.
        results = [_run_one(name, entry) for name, entry in selected]
        timestamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        return HealthReport(status=aggregate(results), checks=results, timestamp=timestamp)


def _run_one(name: str, entry: _Registered) -> CheckResult:
    start = time.perf_counter()
    try:
        raw = entry.check() if entry.timeout_s is None else _with_timeout(name, entry)
        result = _normalise(name, raw, entry.critical)
    except Exception as exc:
        status = HealthStatus.UNHEALTHY if entry.critical else HealthStatus.DEGRADED
        detail = redact(f"check raised {type(exc).__name__}: {exc}")
        _log.warning("health check failed", extra={"check": name, "error": detail})
        result = CheckResult(name, status, detail=detail, critical=entry.critical)
    return replace(result, duration_s=time.perf_counter() - start)


def _with_timeout(name: str, entry: _Registered) -> object:
    """Run the check in a daemon thread (with the caller's context) and wait at most timeout_s."""
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            outcome["value"] = entry.check()
        except BaseException as exc:  # handed to the waiting thread, which re-raises it
            outcome["error"] = exc
        finally:
            done.set()

    context = contextvars.copy_context()  # keeps the correlation id in the check's logs
    worker = threading.Thread(
        target=context.run, args=(target,), name=f"health-check-{name}", daemon=True
    )
    worker.start()
    if not done.wait(entry.timeout_s):
        raise CERTTimeoutError(
            f"check did not answer within {entry.timeout_s} s",
            context={"check": name, "timeout_s": entry.timeout_s},
        )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _normalise(name: str, raw: object, critical: bool) -> CheckResult:
    """Accept the three return forms; anything else is a bug in the check."""
    if isinstance(raw, CheckResult):
        if not isinstance(raw.status, HealthStatus):
            raise InvalidInputError(
                f"check {name!r} returned status {raw.status!r}, expected a HealthStatus",
                context={"field": "status", "value": repr(raw.status)},
            )
        return replace(raw, name=name, critical=critical)
    if isinstance(raw, HealthStatus):
        return CheckResult(name, raw, critical=critical)
    if isinstance(raw, bool):
        status = HealthStatus.HEALTHY if raw else HealthStatus.UNHEALTHY
        return CheckResult(name, status, critical=critical)
    raise InvalidInputError(
        f"check {name!r} returned {raw!r}; expected CheckResult, HealthStatus or bool",
        context={"field": "check", "value": repr(raw)},
    )


_BREAKER_STATUS = {
    CircuitState.CLOSED: HealthStatus.HEALTHY,
    CircuitState.HALF_OPEN: HealthStatus.DEGRADED,
    CircuitState.OPEN: HealthStatus.UNHEALTHY,
}


def breaker_check(breaker: CircuitBreaker) -> Callable[[], CheckResult]:
    """A health check reporting a breaker: CLOSED healthy, HALF_OPEN degraded, OPEN unhealthy.

    Register it non-critical when the process can still serve without that dependency.
    """
    if not isinstance(breaker, CircuitBreaker):
        raise InvalidInputError(
            f"breaker must be a CircuitBreaker, got {breaker!r}",
            context={"field": "breaker", "value": repr(breaker)},
        )

    def check() -> CheckResult:
        stats = breaker.stats()
        data = asdict(stats)
        data["state"] = stats.state.value
        detail = f"circuit {stats.name!r} is {stats.state.value}"
        return CheckResult(breaker.name, _BREAKER_STATUS[stats.state], detail=detail, data=data)

    return check
