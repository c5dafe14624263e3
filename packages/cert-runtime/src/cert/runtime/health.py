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


class _Worker:
    """One thread running a timed check, and what it returned or raised once done."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.started = time.monotonic()
        self.value: object = None
        self.error: BaseException | None = None


class _Slot:
    """The in-flight worker of one timed check.

    Why: an abandoned thread cannot be killed, so a check that hangs must not get a new thread
    on every run (a health probe every few seconds would leak threads without bound). While a
    worker runs, later runs wait on it and report the check as pending.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.worker: _Worker | None = None


@dataclass(frozen=True)
class _Registered:
    check: CheckFn
    critical: bool
    liveness: bool
    timeout_s: float | None
    slot: _Slot = field(default_factory=_Slot, compare=False)


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
        ``CERTTimeoutError``, ``data["pending"]``) if it has not answered in time. The thread
        cannot be killed; it stays the check's one in-flight worker, which later runs wait on
        instead of starting another.
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
        data = {}
        if isinstance(exc, CERTTimeoutError) and exc.context.get("pending"):
            data = {"pending": True, "running_s": exc.context["running_s"]}
        result = CheckResult(name, status, detail=detail, data=data, critical=entry.critical)
    return replace(result, duration_s=time.perf_counter() - start)


def _with_timeout(name: str, entry: _Registered) -> object:
    """Wait at most timeout_s for the check's worker thread, starting one only if none runs.

    The worker runs with the caller's context (correlation id). A worker still running from an
    earlier run is joined instead of duplicated; if it does not finish in time the check is
    reported as pending (a ``CERTTimeoutError`` with ``pending`` and ``running_s`` in its context).
    """
    with entry.slot.lock:
        worker = entry.slot.worker
        if worker is None or worker.done.is_set():
            worker = _start_worker(name, entry.check)
            entry.slot.worker = worker
    if not worker.done.wait(entry.timeout_s):
        running_s = round(time.monotonic() - worker.started, 3)
        raise CERTTimeoutError(
            f"check did not answer within {entry.timeout_s} s (pending for {running_s} s)",
            context={
                "check": name,
                "timeout_s": entry.timeout_s,
                "pending": True,
                "running_s": running_s,
            },
        )
    if worker.error is not None:
        raise worker.error
    return worker.value


def _start_worker(name: str, check: CheckFn) -> _Worker:
    worker = _Worker()

    def target() -> None:
        try:
            worker.value = check()
        except BaseException as exc:  # handed to the waiting thread, which re-raises it
            worker.error = exc
        finally:
            worker.done.set()

    context = contextvars.copy_context()  # keeps the correlation id in the check's logs
    threading.Thread(
        target=context.run, args=(target,), name=f"health-check-{name}", daemon=True
    ).start()
    return worker


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
