"""Circuit breaker: transitions on a manual clock, one probe in HALF_OPEN, threads and asyncio."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from cert.runtime.breaker import CircuitBreaker, CircuitState
from cert.runtime.errors import CircuitOpenError, InvalidInputError
from cert.runtime.metrics import MetricsFactory


class BoomError(Exception):
    pass


class ClientError(Exception):
    """Stands for a caller's own mistake (an HTTP 4xx): the dependency answered fine."""


def fail() -> None:
    raise BoomError("dependency down")


def make(clock: Any, **kwargs: Any) -> CircuitBreaker:
    kwargs.setdefault("failure_threshold", 3)
    kwargs.setdefault("recovery_timeout", 10.0)
    return CircuitBreaker("svc", clock=clock, **kwargs)


def trip(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.failure_threshold):
        with pytest.raises(BoomError):
            breaker.call(fail)


def test_opens_after_threshold_consecutive_failures(clock: Any) -> None:
    breaker = make(clock)
    for _ in range(2):
        with pytest.raises(BoomError):
            breaker.call(fail)
    assert breaker.state is CircuitState.CLOSED
    with pytest.raises(BoomError):
        breaker.call(fail)
    assert breaker.state is CircuitState.OPEN


def test_success_resets_the_consecutive_failure_count(clock: Any) -> None:
    breaker = make(clock)
    for _ in range(5):
        with pytest.raises(BoomError):
            breaker.call(fail)
        with pytest.raises(BoomError):
            breaker.call(fail)
        assert breaker.call(lambda: 42) == 42
    assert breaker.state is CircuitState.CLOSED


def test_open_circuit_refuses_without_calling_and_reports_retry_after(clock: Any) -> None:
    breaker = make(clock)
    trip(breaker)
    clock.advance(4.0)
    calls: list[int] = []
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(calls.append, 1)
    assert calls == []
    assert info.value.retry_after == pytest.approx(6.0)
    assert info.value.context == {"breaker": "svc", "state": "open"}
    assert breaker.stats().rejected_count == 1


def test_half_open_after_recovery_timeout_and_probe_success_closes(clock: Any) -> None:
    breaker = make(clock)
    trip(breaker)
    clock.advance(9.999)
    assert breaker.state is CircuitState.OPEN
    clock.advance(0.001)
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.call(lambda: "ok") == "ok"
    assert breaker.state is CircuitState.CLOSED


def test_failed_probe_reopens_with_a_fresh_timer(clock: Any) -> None:
    breaker = make(clock)
    trip(breaker)
    clock.advance(10.0)
    with pytest.raises(BoomError):
        breaker.call(fail)
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError) as info:
        breaker.acquire()
    assert info.value.retry_after == pytest.approx(10.0)


def test_half_open_admits_exactly_one_probe_at_a_time(clock: Any) -> None:
    breaker = make(clock)
    trip(breaker)
    clock.advance(10.0)
    breaker.acquire()  # the probe
    with pytest.raises(CircuitOpenError, match="probe in flight") as info:
        breaker.acquire()
    assert info.value.retry_after == 0.0
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED


def test_success_threshold_needs_that_many_probes(clock: Any) -> None:
    breaker = make(clock, success_threshold=3)
    trip(breaker)
    clock.advance(10.0)
    for _ in range(2):
        breaker.call(lambda: None)
        assert breaker.state is CircuitState.HALF_OPEN
    breaker.call(lambda: None)
    assert breaker.state is CircuitState.CLOSED


def test_is_failure_excludes_client_errors_which_still_propagate(clock: Any) -> None:
    breaker = make(clock, is_failure=lambda exc: not isinstance(exc, ClientError))

    def client_mistake() -> None:
        raise ClientError("400 bad request")

    for _ in range(10):
        with pytest.raises(ClientError):
            breaker.call(client_mistake)
    assert breaker.state is CircuitState.CLOSED
    # An excluded error proves the dependency answered, so it also closes a half-open circuit.
    trip(breaker)
    clock.advance(10.0)
    with pytest.raises(ClientError):
        breaker.call(client_mistake)
    assert breaker.state is CircuitState.CLOSED


def test_record_failure_manual_protocol_counts_only_failures(clock: Any) -> None:
    breaker = make(clock, is_failure=lambda exc: isinstance(exc, BoomError))
    for _ in range(5):
        breaker.acquire()
        breaker.record_failure(ValueError("not ours"))
    assert breaker.state is CircuitState.CLOSED
    for _ in range(3):
        breaker.acquire()
        breaker.record_failure(BoomError())
    assert breaker.state is CircuitState.OPEN


def test_raising_classifier_counts_as_failure_and_keeps_the_original_error(
    clock: Any,
) -> None:
    def broken(exc: BaseException) -> bool:
        raise RuntimeError("classifier bug")

    breaker = make(clock, is_failure=broken, failure_threshold=1)
    with pytest.raises(BoomError):
        breaker.call(fail)
    assert breaker.state is CircuitState.OPEN


def test_state_change_hook_sees_every_transition_and_may_read_the_breaker(
    clock: Any,
) -> None:
    seen: list[tuple[CircuitState, CircuitState, CircuitState]] = []
    holder: dict[str, CircuitBreaker] = {}

    def hook(old: CircuitState, new: CircuitState) -> None:
        seen.append((old, new, holder["b"].state))  # re-entrant read must not deadlock

    breaker = holder["b"] = make(clock, on_state_change=hook)
    trip(breaker)
    clock.advance(10.0)
    breaker.call(lambda: None)
    assert [(old, new) for old, new, _ in seen] == [
        (CircuitState.CLOSED, CircuitState.OPEN),
        (CircuitState.OPEN, CircuitState.HALF_OPEN),
        (CircuitState.HALF_OPEN, CircuitState.CLOSED),
    ]


def test_raising_hook_does_not_break_the_breaker(clock: Any) -> None:
    def hook(old: CircuitState, new: CircuitState) -> None:
        raise RuntimeError("hook bug")

    breaker = make(clock, on_state_change=hook)
    trip(breaker)
    assert breaker.state is CircuitState.OPEN


def test_stale_outcome_from_before_the_trip_is_ignored(clock: Any) -> None:
    breaker = make(clock, failure_threshold=1)
    release = threading.Event()
    started = threading.Event()

    def slow_success() -> str:
        started.set()
        release.wait(5)
        return "late"

    result: list[str] = []
    worker = threading.Thread(target=lambda: result.append(breaker.call(slow_success)))
    worker.start()
    started.wait(5)
    with pytest.raises(BoomError):
        breaker.call(fail)  # trips while the slow call is still running
    clock.advance(10.0)
    assert breaker.state is CircuitState.HALF_OPEN
    release.set()
    worker.join(5)
    assert result == ["late"]
    # The late success was admitted under CLOSED; it must not count as the half-open probe.
    assert breaker.state is CircuitState.HALF_OPEN


def test_reset_closes_and_clears(clock: Any) -> None:
    breaker = make(clock)
    trip(breaker)
    breaker.reset()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.stats().consecutive_failures == 0


def test_base_exception_frees_the_probe_slot_without_counting(clock: Any) -> None:
    breaker = make(clock)
    trip(breaker)
    clock.advance(10.0)

    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        breaker.call(interrupted)
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.call(lambda: 1) == 1  # the slot is free again
    assert breaker.state is CircuitState.CLOSED


def test_threads_half_open_lets_exactly_one_probe_through(clock: Any) -> None:
    breaker = make(clock)
    trip(breaker)
    clock.advance(10.0)
    n = 8
    barrier = threading.Barrier(n)
    probe_running = threading.Event()
    release = threading.Event()
    executed: list[int] = []
    refused: list[int] = []
    lock = threading.Lock()

    def probe(i: int) -> None:
        with lock:
            executed.append(i)
        probe_running.set()
        release.wait(5)

    def worker(i: int) -> None:
        barrier.wait(5)
        try:
            breaker.call(probe, i)
        except CircuitOpenError:
            with lock:
                refused.append(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    probe_running.wait(5)
    # Wait until all non-probe threads have been refused before releasing the probe.
    for _ in range(500):
        with lock:
            if len(refused) == n - 1:
                break
        threading.Event().wait(0.01)
    release.set()
    for t in threads:
        t.join(5)
    assert len(executed) == 1
    assert len(refused) == n - 1
    assert breaker.state is CircuitState.CLOSED


def test_threads_counting_failures_is_exact(clock: Any) -> None:
    transitions: list[tuple[CircuitState, CircuitState]] = []
    breaker = CircuitBreaker(
        "svc",
        failure_threshold=400,
        recovery_timeout=10.0,
        clock=clock,
        on_state_change=lambda old, new: transitions.append((old, new)),
    )

    def worker() -> None:
        for _ in range(100):
            with contextlib.suppress(BoomError, CircuitOpenError):
                breaker.call(fail)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert breaker.state is CircuitState.OPEN
    assert transitions == [(CircuitState.CLOSED, CircuitState.OPEN)]
    assert breaker.stats().opened_count == 1


def test_asyncio_half_open_lets_exactly_one_probe_through(clock: Any) -> None:
    async def scenario() -> tuple[int, int]:
        breaker = make(clock)
        trip(breaker)
        clock.advance(10.0)
        release = asyncio.Event()
        executed = 0

        async def probe() -> str:
            nonlocal executed
            executed += 1
            await release.wait()
            return "ok"

        async def caller() -> str:
            try:
                return await breaker.call_async(probe)
            except CircuitOpenError:
                return "refused"

        tasks = [asyncio.create_task(caller()) for _ in range(10)]
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        release.set()
        results = await asyncio.gather(*tasks)
        assert breaker.state is CircuitState.CLOSED
        return executed, results.count("refused")

    executed, refused = asyncio.run(scenario())
    assert executed == 1
    assert refused == 9


def test_asyncio_failures_open_and_cancelled_probe_frees_the_slot(clock: Any) -> None:
    async def scenario() -> None:
        breaker = make(clock)

        async def afail() -> None:
            raise BoomError

        for _ in range(3):
            with pytest.raises(BoomError):
                await breaker.call_async(afail)
        assert breaker.state is CircuitState.OPEN
        with pytest.raises(CircuitOpenError):
            await breaker.call_async(afail)
        clock.advance(10.0)
        task = asyncio.create_task(breaker.call_async(asyncio.sleep, 10))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert breaker.state is CircuitState.HALF_OPEN

        async def ok() -> int:
            return 7

        assert await breaker.call_async(ok) == 7
        assert breaker.state is CircuitState.CLOSED

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"failure_threshold": True}, "failure_threshold"),
        ({"failure_threshold": 2.5}, "failure_threshold"),
        ({"success_threshold": -1}, "success_threshold"),
        ({"recovery_timeout": -1.0}, "recovery_timeout"),
        ({"recovery_timeout": float("nan")}, "recovery_timeout"),
        ({"recovery_timeout": float("inf")}, "recovery_timeout"),
        ({"recovery_timeout": "30"}, "recovery_timeout"),
        ({"is_failure": "yes"}, "is_failure"),
        ({"clock": 3.0}, "clock"),
        ({"on_state_change": 1}, "on_state_change"),
        ({"metrics": CollectorRegistry()}, "metrics"),
        ({"probe_timeout": -1.0}, "probe_timeout"),
        ({"probe_timeout": float("nan")}, "probe_timeout"),
    ],
)
def test_bad_arguments_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError, match=field):
        CircuitBreaker("svc", **kwargs)


@pytest.mark.parametrize("name", ["", "   ", None, 3])
def test_bad_name(name: Any) -> None:
    with pytest.raises(InvalidInputError, match="name"):
        CircuitBreaker(name)


def test_metrics_follow_state_rejections_and_transitions(clock: Any) -> None:
    registry = CollectorRegistry()
    factory = MetricsFactory(registry, namespace="cert")
    breaker = make(clock, metrics=factory)
    other = CircuitBreaker("other", clock=clock, metrics=factory)  # same registry: no clash

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(f"cert_{name}", {"breaker": "svc", **labels})

    assert sample("circuit_breaker_state") == 0
    trip(breaker)
    assert sample("circuit_breaker_state") == 2
    for _ in range(2):
        with pytest.raises(CircuitOpenError):
            breaker.call(lambda: None)
    assert sample("circuit_breaker_rejections_total") == 2
    clock.advance(10.0)
    assert breaker.state is CircuitState.HALF_OPEN
    assert sample("circuit_breaker_state") == 1
    breaker.call(lambda: None)
    assert sample("circuit_breaker_state") == 0
    assert sample("circuit_breaker_transitions_total", to_state="open") == 1
    assert sample("circuit_breaker_transitions_total", to_state="closed") == 1
    assert other.state is CircuitState.CLOSED
    assert registry.get_sample_value("cert_circuit_breaker_state", {"breaker": "other"}) == 0


def test_protect_decorates_sync_and_async_functions(clock: Any) -> None:
    breaker = make(clock, failure_threshold=2)

    @breaker.protect
    def divide(a: int, b: int) -> float:
        """Divide."""
        return a / b

    @breaker.protect
    async def adivide(a: int, b: int) -> float:
        return a / b

    assert divide(6, 3) == 2
    assert divide.__doc__ == "Divide."
    assert asyncio.run(adivide(6, 2)) == 3
    with pytest.raises(ZeroDivisionError):
        divide(1, 0)
    with pytest.raises(ZeroDivisionError):
        asyncio.run(adivide(1, 0))
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError):
        divide(1, 1)
    with pytest.raises(CircuitOpenError):
        asyncio.run(adivide(1, 1))
    with pytest.raises(InvalidInputError, match="fn"):
        breaker.protect(42)  # type: ignore[arg-type]


def test_retry_around_breaker_stops_at_an_open_circuit(clock: Any, sleeps: Any) -> None:
    """Composition: retries spend attempts until the breaker opens, then fail fast."""
    from cert.runtime.errors import CERTError
    from cert.runtime.retry import retry_policy

    breaker = make(clock, failure_threshold=2)
    calls = 0

    def flaky() -> None:
        nonlocal calls
        calls += 1
        raise CERTError("upstream 503", recoverable=True)

    policy = retry_policy(max_attempts=5, jitter=0.0, sleep=sleeps)
    with pytest.raises(CircuitOpenError):
        policy(breaker.call, flaky)
    assert calls == 2  # the third attempt met the open circuit, which is not retried
    assert len(sleeps.waits) == 2


def test_misuse_is_a_typed_error_and_never_counts_as_a_failure(clock: Any) -> None:
    breaker = make(clock, failure_threshold=1)
    with pytest.raises(InvalidInputError, match="fn"):
        breaker.call(42)  # type: ignore[arg-type]

    def sync_fn() -> int:
        return 1

    with pytest.raises(InvalidInputError, match="awaitable"):
        asyncio.run(breaker.call_async(sync_fn))  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="fn"):
        asyncio.run(breaker.call_async(None))  # type: ignore[arg-type]
    assert breaker.state is CircuitState.CLOSED
    # The same misuse during HALF_OPEN must not hold the probe slot.
    with pytest.raises(ZeroDivisionError):
        breaker.call(lambda: 1 / 0)
    clock.advance(10.0)
    with pytest.raises(InvalidInputError):
        asyncio.run(breaker.call_async(sync_fn))  # type: ignore[arg-type]
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.call(sync_fn) == 1
    assert breaker.state is CircuitState.CLOSED


def test_hung_probe_keeps_half_open_without_probe_timeout(clock: Any) -> None:
    breaker = make(clock)
    trip(breaker)
    clock.advance(10.0)
    breaker.acquire()  # a probe that never reports back
    clock.advance(1e6)
    with pytest.raises(CircuitOpenError, match="probe in flight"):
        breaker.acquire()


def test_probe_timeout_hands_a_hung_probes_slot_to_the_next_caller(clock: Any) -> None:
    breaker = make(clock, probe_timeout=5.0)
    trip(breaker)
    clock.advance(10.0)
    release = threading.Event()
    started = threading.Event()

    def hung() -> str:
        started.set()
        release.wait(10)
        return "late"

    late: list[str] = []
    worker = threading.Thread(target=lambda: late.append(breaker.call(hung)))
    worker.start()
    started.wait(5)
    clock.advance(4.9)
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: "early")
    clock.advance(0.1)
    with pytest.raises(BoomError):
        breaker.call(fail)  # the new probe fails: the circuit re-opens
    assert breaker.state is CircuitState.OPEN
    release.set()
    worker.join(10)
    assert late == ["late"]
    assert breaker.state is CircuitState.OPEN  # the hung probe's late success changed nothing
    clock.advance(10.0)
    assert breaker.call(lambda: "ok") == "ok"
    assert breaker.state is CircuitState.CLOSED
