"""A sliding-window rate limiter for requests and tokens per minute, shared by an event loop.

The limit holds in *every* 60-second window, not per calendar minute: a request is admitted only
if fewer than ``requests_per_minute`` requests were admitted in the preceding window (likewise for
input tokens, which are known before the request, and output tokens, which are recorded after the
response). The internal lock is held only to compute the wait, never while sleeping, so one waiting
task does not stall the others or the event loop. ``anthropic-ratelimit-*`` response headers with
zero remaining block further requests until the server's reset time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping

from cert.coordination._validate import check_float, check_int
from cert.coordination.errors import CoordinationInputError

_HEADER_KINDS = ("requests", "input-tokens", "output-tokens", "tokens")


class SlidingWindowRateLimiter:
    """Admit requests so that every ``window_s`` window respects the configured limits."""

    def __init__(
        self,
        requests_per_minute: int,
        *,
        input_tokens_per_minute: int | None = None,
        output_tokens_per_minute: int | None = None,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.requests_per_minute = check_int(
            "requests_per_minute", requests_per_minute, minimum=1, maximum=1_000_000
        )
        self.input_tokens_per_minute = (
            None
            if input_tokens_per_minute is None
            else check_int(
                "input_tokens_per_minute", input_tokens_per_minute, minimum=1, maximum=10**12
            )
        )
        self.output_tokens_per_minute = (
            None
            if output_tokens_per_minute is None
            else check_int(
                "output_tokens_per_minute", output_tokens_per_minute, minimum=1, maximum=10**12
            )
        )
        self.window_s = check_float("window_s", window_s, minimum=0.0, allow_minimum=False)
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._requests: deque[float] = deque()
        self._input: deque[tuple[float, int]] = deque()
        self._output: deque[tuple[float, int]] = deque()
        self._blocked_until = 0.0
        self.total_wait_s = 0.0

    def _prune(self, now: float) -> None:
        horizon = now - self.window_s
        while self._requests and self._requests[0] <= horizon:
            self._requests.popleft()
        for log in (self._input, self._output):
            while log and log[0][0] <= horizon:
                log.popleft()

    @staticmethod
    def _wait_for_tokens(log: deque[tuple[float, int]], limit: int, need: int, end: float) -> float:
        """Seconds until ``need`` more tokens fit under ``limit`` as old entries expire."""
        used = sum(n for _, n in log)
        if used + need <= limit:
            return 0.0
        for stamp, n in log:
            used -= n
            if used + need <= limit:
                return stamp + end
        return 0.0  # unreachable: need <= limit is checked on entry

    def _admission_wait(self, now: float, input_tokens: int) -> float:
        self._prune(now)
        waits = [self._blocked_until - now]
        if len(self._requests) >= self.requests_per_minute:
            waits.append(self._requests[-self.requests_per_minute] + self.window_s - now)
        if self.input_tokens_per_minute is not None and input_tokens:
            waits.append(
                self._wait_for_tokens(
                    self._input, self.input_tokens_per_minute, input_tokens, self.window_s - now
                )
            )
        if self.output_tokens_per_minute is not None:
            waits.append(
                self._wait_for_tokens(
                    self._output, self.output_tokens_per_minute - 1, 0, self.window_s - now
                )
            )
        return max(waits)

    def try_acquire(self, *, input_tokens: int = 0) -> float:
        """Admit now and return 0.0, or return the seconds to wait before trying again."""
        check_int("input_tokens", input_tokens, minimum=0, maximum=10**12)
        if self.input_tokens_per_minute is not None and input_tokens > self.input_tokens_per_minute:
            raise CoordinationInputError(
                f"input_tokens={input_tokens} can never fit under "
                f"input_tokens_per_minute={self.input_tokens_per_minute}"
            )
        with self._lock:
            now = self._clock()
            wait = self._admission_wait(now, input_tokens)
            if wait > 0:
                return wait
            self._requests.append(now)
            if input_tokens:
                self._input.append((now, input_tokens))
            return 0.0

    async def acquire(self, *, input_tokens: int = 0) -> float:
        """Wait until the request may go; return the seconds spent waiting."""
        waited = 0.0
        while (wait := self.try_acquire(input_tokens=input_tokens)) > 0:
            await self._sleep(wait)
            waited += wait
        self.total_wait_s += waited
        return waited

    def record_output_tokens(self, tokens: int) -> None:
        """Count a response's output tokens against the output-tokens-per-minute limit."""
        if self.output_tokens_per_minute is None or tokens <= 0:
            return
        with self._lock:
            self._output.append((self._clock(), tokens))

    def update_from_headers(self, headers: Mapping[str, str]) -> None:
        """Block until the server's reset time when a ``*-remaining`` header reads zero."""
        lowered = {k.lower(): v for k, v in headers.items()}
        for kind in _HEADER_KINDS:
            remaining = lowered.get(f"anthropic-ratelimit-{kind}-remaining")
            reset = lowered.get(f"anthropic-ratelimit-{kind}-reset")
            if remaining is None or reset is None:
                continue
            try:
                exhausted = int(remaining) <= 0
                reset_at = dt.datetime.fromisoformat(reset.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue  # a malformed header is ignored, never trusted
            if exhausted:
                with self._lock:
                    until = self._clock() + max(0.0, reset_at - self._wall_clock())
                    self._blocked_until = max(self._blocked_until, until)

    def in_window(self) -> int:
        """Requests admitted in the current window."""
        with self._lock:
            self._prune(self._clock())
            return len(self._requests)
