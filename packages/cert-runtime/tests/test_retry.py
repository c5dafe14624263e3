"""Retry policies with an injected sleep: backoff, jitter, retry_after floor, hooks, exhaustion."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from typing import Any

import pytest
import tenacity
from hypothesis import given
from hypothesis import strategies as st

from cert.runtime.errors import (
    CERTError,
    GPUOutOfMemoryError,
    InvalidInputError,
    ResourceLoadError,
    RetriesExhaustedError,
)
from cert.runtime.retry import BackoffWait, async_retry_policy, is_retryable, retry_policy


class Flaky:
    """Fails with the given errors in order, then returns "done"."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def recoverable(msg: str = "transient", **kwargs: Any) -> CERTError:
    return CERTError(msg, recoverable=True, **kwargs)


def test_retries_recoverable_errors_with_exponential_backoff(sleeps: Any) -> None:
    flaky = Flaky(recoverable(), recoverable(), recoverable())
    policy = retry_policy(max_attempts=4, initial=0.5, maximum=30.0, jitter=0.0, sleep=sleeps)
    assert policy(flaky) == "done"
    assert flaky.calls == 4
    assert sleeps.waits == [0.5, 1.0, 2.0]


def test_backoff_is_capped_at_maximum(sleeps: Any) -> None:
    flaky = Flaky(*[recoverable() for _ in range(5)])
    policy = retry_policy(max_attempts=6, initial=1.0, maximum=3.0, jitter=0.0, sleep=sleeps)
    assert policy(flaky) == "done"
    assert sleeps.waits == [1.0, 2.0, 3.0, 3.0, 3.0]


def test_jitter_adds_between_zero_and_jitter_seconds(sleeps: Any) -> None:
    flaky = Flaky(*[recoverable() for _ in range(20)])
    policy = retry_policy(
        max_attempts=21, initial=0.0, maximum=0.0, jitter=0.25, sleep=sleeps, rng=random.Random(7)
    )
    policy(flaky)
    assert len(sleeps.waits) == 20
    assert all(0.0 <= w <= 0.25 for w in sleeps.waits)
    assert len(set(sleeps.waits)) > 1  # it is actually random


def test_retry_after_is_a_floor_even_above_maximum(sleeps: Any) -> None:
    flaky = Flaky(recoverable(retry_after=45.0), recoverable(retry_after=0.1))
    policy = retry_policy(max_attempts=3, initial=1.0, maximum=30.0, jitter=0.0, sleep=sleeps)
    assert policy(flaky) == "done"
    assert sleeps.waits == [45.0, 2.0]


def test_non_retryable_errors_propagate_immediately(sleeps: Any) -> None:
    for error in (CERTError("permanent"), ValueError("bad"), ResourceLoadError("missing")):
        flaky = Flaky(error)
        with pytest.raises(type(error)) as info:
            retry_policy(sleep=sleeps)(flaky)
        assert info.value is error
        assert flaky.calls == 1
    assert sleeps.waits == []


def test_gpu_oom_is_retried_by_default(sleeps: Any) -> None:
    flaky = Flaky(GPUOutOfMemoryError("oom"))
    assert retry_policy(jitter=0.0, sleep=sleeps)(flaky) == "done"


def test_exhaustion_raises_retries_exhausted_with_the_last_error_as_cause(sleeps: Any) -> None:
    last = recoverable("third")
    flaky = Flaky(recoverable("first"), recoverable("second"), last)
    with pytest.raises(RetriesExhaustedError, match="3 attempts") as info:
        retry_policy(max_attempts=3, jitter=0.0, sleep=sleeps)(flaky)
    assert info.value.__cause__ is last
    assert info.value.context["attempts"] == 3
    assert len(sleeps.waits) == 2


def test_on_retry_hook_sees_attempt_and_planned_sleep(sleeps: Any) -> None:
    seen: list[tuple[int, float, str]] = []

    def hook(state: tenacity.RetryCallState) -> None:
        assert state.outcome is not None
        assert state.next_action is not None
        seen.append((state.attempt_number, state.next_action.sleep, str(state.outcome.exception())))

    flaky = Flaky(recoverable("a"), recoverable("b"))
    retry_policy(initial=1.0, jitter=0.0, on_retry=hook, sleep=sleeps)(flaky)
    assert seen == [(1, 1.0, "a"), (2, 2.0, "b")]


def test_custom_retry_on_and_a_broken_predicate(sleeps: Any) -> None:
    flaky = Flaky(ConnectionError("reset"))
    policy = retry_policy(retry_on=lambda e: isinstance(e, ConnectionError), sleep=sleeps)
    assert policy(flaky) == "done"

    def broken(exc: BaseException) -> bool:
        raise RuntimeError("predicate bug")

    flaky = Flaky(ConnectionError("reset"))
    with pytest.raises(ConnectionError):
        retry_policy(retry_on=broken, sleep=sleeps)(flaky)


def test_policy_works_as_decorator_and_iterator(sleeps: Any) -> None:
    flaky = Flaky(recoverable())

    @retry_policy(jitter=0.0, sleep=sleeps).wraps
    def decorated() -> str:
        return flaky()

    assert decorated() == "done"

    attempts = 0
    for attempt in retry_policy(jitter=0.0, sleep=sleeps):
        with attempt:
            attempts += 1
            if attempts < 2:
                raise recoverable()
    assert attempts == 2


def test_async_policy_retries_and_exhausts(sleeps: Any) -> None:
    async def scenario() -> None:
        calls = 0

        async def flaky() -> str:
            nonlocal calls
            calls += 1
            if calls < 3:
                raise recoverable(retry_after=4.0 if calls == 1 else None)
            return "done"

        policy = async_retry_policy(initial=0.5, jitter=0.0, sleep=sleeps.async_sleep)
        assert await policy(flaky) == "done"
        assert sleeps.waits == [4.0, 1.0]

        async def always() -> None:
            raise recoverable("never")

        with pytest.raises(RetriesExhaustedError):
            await async_retry_policy(max_attempts=2, sleep=sleeps.async_sleep)(always)

        async def permanent() -> None:
            raise KeyError("x")

        with pytest.raises(KeyError):
            await async_retry_policy(sleep=sleeps.async_sleep)(permanent)

    asyncio.run(scenario())


def test_is_retryable() -> None:
    assert is_retryable(recoverable())
    assert not is_retryable(CERTError("x"))
    assert not is_retryable(TimeoutError())


@given(
    initial=st.floats(0, 10),
    extra=st.floats(0, 100),
    jitter=st.floats(0, 5),
    attempt=st.integers(1, 5000),
    seed=st.integers(0, 2**32 - 1),
)
def test_wait_is_within_bounds(
    initial: float, extra: float, jitter: float, attempt: int, seed: int
) -> None:
    maximum = initial + extra
    wait = BackoffWait(initial, maximum, jitter, random.Random(seed))
    base = wait.backoff(attempt)
    assert min(initial, maximum) <= base <= maximum
    assert wait.backoff(attempt + 1) >= base  # never shrinks


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": True}, "max_attempts"),
        ({"max_attempts": 2.0}, "max_attempts"),
        ({"initial": -1.0}, "initial"),
        ({"initial": float("nan")}, "initial"),
        ({"maximum": float("inf")}, "maximum"),
        ({"initial": 5.0, "maximum": 1.0}, "maximum"),
        ({"jitter": -0.1}, "jitter"),
        ({"jitter": "0.5"}, "jitter"),
        ({"retry_on": None}, "retry_on"),
        ({"on_retry": "print"}, "on_retry"),
        ({"sleep": 0}, "sleep"),
    ],
)
def test_bad_arguments_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError, match=field):
        retry_policy(**kwargs)
    with pytest.raises(InvalidInputError, match=field):
        async_retry_policy(**kwargs)


def test_each_retry_is_logged_and_async_hooks_are_awaited(
    sleeps: Any, caplog: pytest.LogCaptureFixture
) -> None:
    hooked: list[int] = []

    async def hook(state: tenacity.RetryCallState) -> None:
        await asyncio.sleep(0)
        hooked.append(state.attempt_number)

    async def scenario() -> str:
        calls = 0

        async def flaky() -> str:
            nonlocal calls
            calls += 1
            if calls < 3:
                raise recoverable("token=abcdef123456 rejected")
            return "done"

        policy = async_retry_policy(jitter=0.0, on_retry=hook, sleep=sleeps.async_sleep)
        return str(await policy(flaky))

    with caplog.at_level(logging.WARNING, logger="cert.runtime.retry"):
        assert asyncio.run(scenario()) == "done"
    assert hooked == [1, 2]
    retries = [r for r in caplog.records if r.name == "cert.runtime.retry"]
    assert [r.attempt for r in retries] == [1, 2]  # type: ignore[attr-defined]
    assert [r.sleep_s for r in retries] == [0.5, 1.0]  # type: ignore[attr-defined]


def test_one_policy_shared_by_threads(sleeps: Any) -> None:
    policy = retry_policy(max_attempts=4, jitter=0.0, sleep=sleeps)
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        for _ in range(20):
            flaky = Flaky(recoverable(), recoverable())
            try:
                results.append(policy(flaky))
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert results == ["done"] * 80
    assert sorted(set(sleeps.waits)) == [0.5, 1.0]
