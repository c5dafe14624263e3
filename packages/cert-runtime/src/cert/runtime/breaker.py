"""A circuit breaker for sync and asyncio callers.

CLOSED: calls pass; consecutive failures are counted and ``failure_threshold`` of them open the
circuit. OPEN: calls are refused with :class:`CircuitOpenError` until ``recovery_timeout`` seconds
have passed on the injected clock, then the circuit is HALF_OPEN. HALF_OPEN: exactly one probe
call passes at a time (concurrent callers are refused); a failed probe re-opens the circuit,
``success_threshold`` successful probes close it. With ``probe_timeout`` set, a probe that has
not answered within that many seconds loses its slot to the next caller (its late outcome is
ignored); without it a hung probe keeps the circuit HALF_OPEN.

Exceptions for which ``is_failure(exc)`` is false (e.g. a client's own 4xx) prove the dependency
answered, so they count as successes, exactly as a normal return does; the exception still
propagates to the caller.

Outcomes of calls that started under an earlier state (a slow call admitted while CLOSED that
returns after the circuit opened) are ignored, so they cannot close or re-open a circuit they did
not probe. One ``threading.Lock`` guards the state; it is never held across the protected call or
an ``await``, so the same breaker serves threads and asyncio tasks.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, NamedTuple, ParamSpec, TypeVar, cast

from cert.runtime._validate import callable_arg, non_empty_str, non_negative_float, positive_int
from cert.runtime.errors import CircuitOpenError, InvalidInputError
from cert.runtime.metrics import MetricsFactory

__all__ = ["BreakerStats", "CircuitBreaker", "CircuitState"]

_log = logging.getLogger("cert.runtime.breaker")

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R")


class CircuitState(str, Enum):
    """The three states of a circuit breaker."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerStats:
    """A consistent snapshot of a breaker, for health checks and dashboards."""

    name: str
    state: CircuitState
    consecutive_failures: int
    half_open_successes: int
    opened_count: int
    rejected_count: int
    retry_after: float


class _Ticket(NamedTuple):
    """What ``_admit`` hands a call: the state generation it was admitted under, and its role."""

    generation: int
    probe: bool


_GAUGE_VALUE = {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}

_Changes = tuple[tuple[CircuitState, CircuitState], ...]
_NO_CHANGES: _Changes = ()


class _NotAwaitableError(InvalidInputError):
    """call_async was handed a synchronous function (private: only the breaker raises it)."""


def _always_failure(exc: BaseException) -> bool:
    return True


class CircuitBreaker:
    """Fail fast while a dependency is down, probe it once it may have recovered."""

    def __init__(
        self,
        name: str = "default",
        *,
        failure_threshold: int = 5,
        recovery_timeout: float = 30.0,
        success_threshold: int = 1,
        is_failure: Callable[[BaseException], bool] = _always_failure,
        clock: Callable[[], float] = time.monotonic,
        on_state_change: Callable[[CircuitState, CircuitState], None] | None = None,
        metrics: MetricsFactory | None = None,
        probe_timeout: float | None = None,
    ) -> None:
        self.name = non_empty_str("name", name)
        self.failure_threshold = positive_int("failure_threshold", failure_threshold)
        self.recovery_timeout = non_negative_float("recovery_timeout", recovery_timeout)
        self.success_threshold = positive_int("success_threshold", success_threshold)
        self._is_failure = callable_arg("is_failure", is_failure)
        self._clock = callable_arg("clock", clock)
        if on_state_change is not None:
            callable_arg("on_state_change", on_state_change)
        self._on_state_change = on_state_change
        self.probe_timeout = (
            None if probe_timeout is None else non_negative_float("probe_timeout", probe_timeout)
        )
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        self._generation = 0
        self._failures = 0
        self._successes = 0
        self._opened_at = 0.0
        self._probe_in_flight = False
        self._probe_started = 0.0
        self._opened_count = 0
        self._rejected_count = 0
        self._instrument(metrics if metrics is not None else MetricsFactory(enabled=False))

    # ------------------------------------------------------------------ state
    @property
    def state(self) -> CircuitState:
        """The current state; an OPEN circuit whose recovery timeout elapsed reads HALF_OPEN."""
        with self._lock:
            changes = self._refresh()
            state = self._state
        if changes:
            self._notify(changes)
        return state

    def stats(self) -> BreakerStats:
        """A snapshot of the counters under one lock acquisition."""
        with self._lock:
            changes = self._refresh()
            snapshot = BreakerStats(
                name=self.name,
                state=self._state,
                consecutive_failures=self._failures,
                half_open_successes=self._successes,
                opened_count=self._opened_count,
                rejected_count=self._rejected_count,
                retry_after=self._retry_after(),
            )
        if changes:
            self._notify(changes)
        return snapshot

    def reset(self) -> None:
        """Force the circuit CLOSED and clear the counters (an operator's override)."""
        with self._lock:
            changes = self._transition(CircuitState.CLOSED)
        if changes:
            self._notify(changes)

    # ------------------------------------------------------------------ manual protocol
    def acquire(self) -> None:
        """Raise :class:`CircuitOpenError` unless a call may pass now.

        In HALF_OPEN the caller that gets through holds the single probe slot and must report
        with :meth:`record_success` or :meth:`record_failure`.
        """
        self._admit()

    def record_success(self) -> None:
        """Report a successful call admitted by :meth:`acquire`."""
        self._record(None, failed=False)

    def record_failure(self, exc: BaseException) -> None:
        """Report a failed call; it counts only if ``is_failure(exc)``, else it is a success."""
        self._record(None, failed=self._classify(exc))

    # ------------------------------------------------------------------ wrapped calls
    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Call ``fn(*args, **kwargs)`` through the breaker."""
        if not callable(fn):  # a caller's bug, not a dependency failure: never counted
            callable_arg("fn", fn)
        ticket = self._admit()
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            self._record(ticket, failed=self._classify(exc))
            raise
        except BaseException:
            self._release(ticket)
            raise
        self._record(ticket, failed=False)
        return result

    async def call_async(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Await ``fn(*args, **kwargs)`` through the breaker; cancellation is not a failure."""
        if not callable(fn):
            callable_arg("fn", fn)
        ticket = self._admit()
        try:
            awaitable = fn(*args, **kwargs)
            if not inspect.isawaitable(awaitable):
                raise _NotAwaitableError(
                    f"call_async needs a function that returns an awaitable; {fn!r} returned "
                    f"{type(awaitable).__name__} (use call() for synchronous functions)",
                    context={"field": "fn", "value": repr(fn)},
                )
            result = await awaitable
        except _NotAwaitableError:
            self._release(ticket)  # the caller's bug, not the dependency's
            raise
        except Exception as exc:
            self._record(ticket, failed=self._classify(exc))
            raise
        except BaseException:
            self._release(ticket)
            raise
        self._record(ticket, failed=False)
        return result

    def protect(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorate ``fn`` so every call goes through the breaker (async functions stay async)."""
        callable_arg("fn", fn)
        if inspect.iscoroutinefunction(fn):
            async_fn = cast(Callable[P, Awaitable[Any]], fn)

            @functools.wraps(fn)
            async def guarded_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await self.call_async(async_fn, *args, **kwargs)

            return cast(Callable[P, R], guarded_async)

        @functools.wraps(fn)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            return self.call(fn, *args, **kwargs)

        return guarded

    def __repr__(self) -> str:
        return f"CircuitBreaker(name={self.name!r}, state={self.state.value!r})"

    # ------------------------------------------------------------------ internals
    def _instrument(self, metrics: MetricsFactory) -> None:
        """Per-breaker series on the factory's registry (no-ops when metrics are off)."""
        if not isinstance(metrics, MetricsFactory):
            raise InvalidInputError(
                f"metrics must be a MetricsFactory, got {metrics!r}",
                context={"field": "metrics", "value": repr(metrics)},
            )
        self._state_gauge = metrics.gauge(
            "circuit_breaker_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
            ["breaker"],
        ).labels(breaker=self.name)
        self._rejections = metrics.counter(
            "circuit_breaker_rejections_total",
            "Calls refused because the circuit was open or its probe slot taken.",
            ["breaker"],
        ).labels(breaker=self.name)
        self._transitions = metrics.counter(
            "circuit_breaker_transitions_total",
            "Circuit state changes, by the state entered.",
            ["breaker", "to_state"],
        )
        self._state_gauge.set(_GAUGE_VALUE[self._state])

    def _classify(self, exc: BaseException) -> bool:
        try:
            return bool(self._is_failure(exc))
        except Exception:
            # A broken classifier must not hide the original error or wedge the probe slot.
            _log.exception("is_failure raised for breaker %r; counting a failure", self.name)
            return True

    def _admit(self) -> _Ticket:
        with self._lock:
            changes = self._refresh()
            ticket: _Ticket | None = None
            if self._state is CircuitState.CLOSED:
                ticket = _Ticket(self._generation, False)
            elif self._state is CircuitState.HALF_OPEN and (
                not self._probe_in_flight or self._probe_expired()
            ):
                if self._probe_in_flight:
                    # The last probe never answered: its slot goes to this caller, and the
                    # generation moves on so the hung call's outcome, if it ever comes, is ignored.
                    self._generation += 1
                self._probe_in_flight = True
                self._probe_started = self._clock()
                ticket = _Ticket(self._generation, True)
            else:
                self._rejected_count += 1
                self._rejections.inc()
                state, retry_after = self._state, self._retry_after()
        if changes:
            self._notify(changes)
        if ticket is None:
            reason = "open" if state is CircuitState.OPEN else "half-open with a probe in flight"
            raise CircuitOpenError(
                f"circuit {self.name!r} is {reason}; retry after {retry_after:.3f} s",
                retry_after=retry_after,
                context={"breaker": self.name, "state": state.value},
            )
        return ticket

    def _record(self, ticket: _Ticket | None, *, failed: bool) -> None:
        with self._lock:
            changes = self._refresh()
            if ticket is not None and ticket.generation != self._generation:
                pass  # admitted under an earlier state: its outcome says nothing about this one
            elif self._state is CircuitState.HALF_OPEN:
                self._probe_in_flight = False
                if failed:
                    changes += self._transition(CircuitState.OPEN)
                else:
                    self._successes += 1
                    if self._successes >= self.success_threshold:
                        changes += self._transition(CircuitState.CLOSED)
            elif self._state is CircuitState.CLOSED:
                if failed:
                    self._failures += 1
                    if self._failures >= self.failure_threshold:
                        changes += self._transition(CircuitState.OPEN)
                else:
                    self._failures = 0
        if changes:
            self._notify(changes)

    def _release(self, ticket: _Ticket) -> None:
        """Free the probe slot of a call that ended without an outcome (e.g. cancelled)."""
        with self._lock:
            if ticket.probe and ticket.generation == self._generation:
                self._probe_in_flight = False

    def _probe_expired(self) -> bool:
        return (
            self.probe_timeout is not None
            and self._clock() - self._probe_started >= self.probe_timeout
        )

    def _retry_after(self) -> float:
        if self._state is CircuitState.OPEN:
            return max(0.0, self._opened_at + self.recovery_timeout - self._clock())
        return 0.0

    def _refresh(self) -> _Changes:
        """Turn OPEN into HALF_OPEN once the recovery timeout has elapsed (lock held)."""
        if (
            self._state is CircuitState.OPEN
            and self._clock() - self._opened_at >= self.recovery_timeout
        ):
            return self._transition(CircuitState.HALF_OPEN)
        return _NO_CHANGES

    def _transition(self, new: CircuitState) -> _Changes:
        """Enter ``new`` with fresh counters (lock held); returns the change to announce."""
        old = self._state
        self._state = new
        self._generation += 1
        self._failures = 0
        self._successes = 0
        self._probe_in_flight = False
        if new is CircuitState.OPEN:
            self._opened_at = self._clock()
            self._opened_count += 1
        # Under the lock, so the gauge cannot be left showing an older state than the breaker's.
        self._state_gauge.set(_GAUGE_VALUE[new])
        if old is not new:
            self._transitions.labels(breaker=self.name, to_state=new.value).inc()
        return _NO_CHANGES if old is new else ((old, new),)

    def _notify(self, changes: _Changes) -> None:
        """Log and run the state-change hook outside the lock, so the hook may read the breaker."""
        for old, new in changes:
            _log.info(
                "circuit state change",
                extra={"breaker": self.name, "from_state": old.value, "to_state": new.value},
            )
            if self._on_state_change is None:
                continue
            try:
                self._on_state_change(old, new)
            except Exception:
                _log.exception("on_state_change hook failed for breaker %r", self.name)
