"""Sliding-window rate limiter under virtual time: every 60 s window respects the limit."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cert.coordination.errors import CoordinationInputError
from cert.coordination.ratelimit import SlidingWindowRateLimiter


def _max_in_any_window(times: list[float], window: float) -> int:
    return max(sum(1 for u in times if t <= u < t + window) for t in times)


def _admit_all(rpm: int, n: int, vt) -> list[float]:  # type: ignore[no-untyped-def]
    limiter = SlidingWindowRateLimiter(rpm, clock=vt, sleep=vt.sleep)
    admitted: list[float] = []

    async def one() -> None:
        await limiter.acquire()
        admitted.append(vt())

    asyncio.run(vt.run(*(one() for _ in range(n))))
    return admitted


def test_first_minute_admits_exactly_the_limit(virtual_time) -> None:  # type: ignore[no-untyped-def]
    admitted = _admit_all(50, 120, virtual_time)
    assert sum(1 for t in admitted if t < 60) == 50
    assert _max_in_any_window(admitted, 60.0) == 50
    assert max(admitted) == pytest.approx(120.0)  # 120 requests need three windows


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rpm=st.integers(1, 8), n=st.integers(1, 30))
def test_no_sixty_second_window_exceeds_the_limit(rpm: int, n: int, new_virtual_time) -> None:  # type: ignore[no-untyped-def]
    admitted = _admit_all(rpm, n, new_virtual_time())
    assert len(admitted) == n
    assert _max_in_any_window(admitted, 60.0) <= rpm


def test_waiting_task_does_not_block_others(virtual_time) -> None:  # type: ignore[no-untyped-def]
    """A task waiting for tokens never holds the lock: a small request behind it still goes."""
    limiter = SlidingWindowRateLimiter(
        100, input_tokens_per_minute=1000, clock=virtual_time, sleep=virtual_time.sleep
    )
    order: list[str] = []

    async def big() -> None:
        await limiter.acquire(input_tokens=900)
        order.append("big-1")
        await limiter.acquire(input_tokens=900)
        order.append(f"big-2@{virtual_time():.0f}")

    async def small() -> None:
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        await limiter.acquire(input_tokens=50)
        order.append(f"small@{virtual_time():.0f}")

    asyncio.run(virtual_time.run(big(), small()))
    assert order[0] == "big-1"
    assert "small@0" in order
    assert "big-2@60" in order


def test_output_token_limit_blocks_until_window_moves(virtual_time) -> None:  # type: ignore[no-untyped-def]
    limiter = SlidingWindowRateLimiter(
        100, output_tokens_per_minute=100, clock=virtual_time, sleep=virtual_time.sleep
    )
    limiter.record_output_tokens(150)  # the response overshot; nothing more for a minute
    assert limiter.try_acquire() == pytest.approx(60.0)
    virtual_time.advance(60.0)
    assert limiter.try_acquire() == 0.0


def test_ratelimit_headers_with_zero_remaining_block_until_reset(manual_clock) -> None:  # type: ignore[no-untyped-def]
    wall = 1_000_000.0
    limiter = SlidingWindowRateLimiter(100, clock=manual_clock, wall_clock=lambda: wall)
    reset = (
        dt.datetime.fromtimestamp(wall + 12, tz=dt.timezone.utc).isoformat().replace("+00:00", "Z")
    )
    limiter.update_from_headers(
        {
            "anthropic-ratelimit-requests-remaining": "0",
            "anthropic-ratelimit-requests-reset": reset,
        }
    )
    assert limiter.try_acquire() == pytest.approx(12.0)
    limiter.update_from_headers(
        {"anthropic-ratelimit-tokens-remaining": "oops", "anthropic-ratelimit-tokens-reset": "x"}
    )
    manual_clock.advance(12.0)
    assert limiter.try_acquire() == 0.0


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"requests_per_minute": 0}, "requests_per_minute"),
        ({"requests_per_minute": True}, "requests_per_minute"),
        ({"requests_per_minute": 5.5}, "requests_per_minute"),
        ({"requests_per_minute": 5, "input_tokens_per_minute": -1}, "input_tokens_per_minute"),
        ({"requests_per_minute": 5, "window_s": float("nan")}, "window_s"),
        ({"requests_per_minute": 5, "window_s": 0}, "window_s"),
    ],
)
def test_bad_configuration(kwargs: dict, fragment: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(CoordinationInputError, match=fragment):
        SlidingWindowRateLimiter(**kwargs)


def test_request_larger_than_the_token_limit_is_refused() -> None:
    limiter = SlidingWindowRateLimiter(5, input_tokens_per_minute=10)
    with pytest.raises(CoordinationInputError, match="never fit"):
        limiter.try_acquire(input_tokens=11)
    with pytest.raises(CoordinationInputError, match="input_tokens"):
        limiter.try_acquire(input_tokens=-1)
