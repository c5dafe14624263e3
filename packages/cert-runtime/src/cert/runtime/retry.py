"""Retry policies on tenacity: exponential backoff with jitter, only for retryable errors.

The wait before attempt ``n + 1`` is ``min(maximum, initial * 2 ** (n - 1)) + U(0, jitter)``,
raised to the failed error's ``retry_after`` when that is larger: a server's "come back in
30 s" is a floor, not a suggestion, and it may exceed ``maximum``. By default only
:class:`CERTError` instances with ``recoverable=True`` are retried; anything else propagates
unchanged on its first occurrence. When every attempt failed, :class:`RetriesExhaustedError` is
raised with the last failure as ``__cause__``. Each retry is logged at WARNING on
``cert.runtime.retry`` (attempt, planned sleep, error type) before ``on_retry`` runs.

The policies are plain ``tenacity.Retrying`` / ``AsyncRetrying`` objects: call them
(``policy(fn, *args)``), decorate with ``@policy.wraps`` or iterate them
(``for attempt in policy: with attempt: ...``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import tenacity

from cert.runtime._validate import callable_arg, non_negative_float, positive_int
from cert.runtime.errors import CERTError, InvalidInputError, RetriesExhaustedError

__all__ = ["BackoffWait", "async_retry_policy", "is_retryable", "retry_policy"]

_log = logging.getLogger("cert.runtime.retry")


def is_retryable(exc: BaseException) -> bool:
    """The default ``retry_on``: a :class:`CERTError` marked ``recoverable``."""
    return isinstance(exc, CERTError) and exc.recoverable


class BackoffWait(tenacity.wait.wait_base):
    """Exponential backoff with additive jitter and a ``retry_after`` floor (a tenacity wait)."""

    def __init__(
        self, initial: float, maximum: float, jitter: float, rng: random.Random | None = None
    ) -> None:
        self.initial = initial
        self.maximum = maximum
        self.jitter = jitter
        self._rng = rng if rng is not None else random.Random()

    def backoff(self, attempt_number: int) -> float:
        """The wait after failed attempt ``attempt_number`` (1-based), before jitter and floor."""
        exponent = min(attempt_number - 1, 1023)  # 2.0 ** 1024 overflows a float
        return min(self.maximum, self.initial * 2.0**exponent)

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        delay = self.backoff(retry_state.attempt_number)
        if self.jitter:
            delay += self._rng.uniform(0.0, self.jitter)
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        if isinstance(exc, CERTError) and exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
        return delay


def _guarded(retry_on: Callable[[BaseException], bool]) -> Callable[[BaseException], bool]:
    """A predicate that never raises: a broken ``retry_on`` must not mask the original error."""

    def predicate(exc: BaseException) -> bool:
        try:
            return bool(retry_on(exc))
        except Exception:
            _log.exception("retry_on raised; not retrying %s", type(exc).__name__)
            return False

    return predicate


def _exhausted(retry_state: tenacity.RetryCallState) -> Any:
    """Turn the last failure into :class:`RetriesExhaustedError` (tenacity's error callback)."""
    outcome = retry_state.outcome
    last = outcome.exception() if outcome is not None else None
    attempts = retry_state.attempt_number
    last_type = type(last).__name__ if last is not None else "None"
    raise RetriesExhaustedError(
        f"gave up after {attempts} attempts; last error: {last_type}: {last}",
        context={"attempts": attempts, "last_error_type": last_type},
    ) from last


def _log_retry(retry_state: tenacity.RetryCallState) -> None:
    """One WARNING per retry, so retries are visible without a hook (silent until configured)."""
    outcome = retry_state.outcome
    exc = outcome.exception() if outcome is not None else None
    sleep = retry_state.next_action.sleep if retry_state.next_action is not None else 0.0
    _log.warning(
        "retrying after error",
        extra={
            "attempt": retry_state.attempt_number,
            "sleep_s": round(sleep, 3),
            "error_type": type(exc).__name__,
            "error": str(exc),
        },
    )


def _sync_before_sleep(
    on_retry: Callable[[tenacity.RetryCallState], Any] | None,
) -> Callable[[tenacity.RetryCallState], None]:
    def before_sleep(retry_state: tenacity.RetryCallState) -> None:
        _log_retry(retry_state)
        if on_retry is not None:
            on_retry(retry_state)

    return before_sleep


def _async_before_sleep(
    on_retry: Callable[[tenacity.RetryCallState], Any] | None,
) -> Callable[[tenacity.RetryCallState], Awaitable[None]]:
    async def before_sleep(retry_state: tenacity.RetryCallState) -> None:
        _log_retry(retry_state)
        if on_retry is not None:
            result = on_retry(retry_state)
            if inspect.isawaitable(result):  # an async hook is awaited
                await result

    return before_sleep


def _settings(
    max_attempts: int,
    initial: float,
    maximum: float,
    jitter: float,
    retry_on: Callable[[BaseException], bool],
    on_retry: Callable[[tenacity.RetryCallState], Any] | None,
    rng: random.Random | None,
) -> dict[str, Any]:
    """Validate the shared arguments and build the tenacity keyword arguments."""
    positive_int("max_attempts", max_attempts)
    non_negative_float("initial", initial)
    non_negative_float("maximum", maximum)
    non_negative_float("jitter", jitter)
    if maximum < initial:
        raise InvalidInputError(
            f"maximum must be >= initial, got maximum={maximum!r} < initial={initial!r}",
            context={"field": "maximum", "value": maximum, "initial": initial},
        )
    callable_arg("retry_on", retry_on)
    if on_retry is not None:
        callable_arg("on_retry", on_retry)
    return {
        "stop": tenacity.stop_after_attempt(max_attempts),
        "wait": BackoffWait(float(initial), float(maximum), float(jitter), rng),
        "retry": tenacity.retry_if_exception(_guarded(retry_on)),
        "retry_error_callback": _exhausted,
    }


def retry_policy(
    *,
    max_attempts: int = 3,
    initial: float = 0.5,
    maximum: float = 30.0,
    jitter: float = 0.5,
    retry_on: Callable[[BaseException], bool] = is_retryable,
    on_retry: Callable[[tenacity.RetryCallState], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> tenacity.Retrying:
    """A synchronous policy; ``on_retry(state)`` runs before each sleep (``state.next_action``).

    ``sleep`` and ``rng`` are injectable so tests and simulations need not wait or be random.
    """
    settings = _settings(max_attempts, initial, maximum, jitter, retry_on, on_retry, rng)
    return tenacity.Retrying(
        sleep=callable_arg("sleep", sleep), before_sleep=_sync_before_sleep(on_retry), **settings
    )


def async_retry_policy(
    *,
    max_attempts: int = 3,
    initial: float = 0.5,
    maximum: float = 30.0,
    jitter: float = 0.5,
    retry_on: Callable[[BaseException], bool] = is_retryable,
    on_retry: Callable[[tenacity.RetryCallState], Awaitable[None] | None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: random.Random | None = None,
) -> tenacity.AsyncRetrying:
    """The asyncio twin of :func:`retry_policy`; ``sleep`` is awaited, so may ``on_retry`` be."""
    settings = _settings(max_attempts, initial, maximum, jitter, retry_on, on_retry, rng)
    return tenacity.AsyncRetrying(
        sleep=callable_arg("sleep", sleep), before_sleep=_async_before_sleep(on_retry), **settings
    )
