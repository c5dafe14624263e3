"""Tests that kill the breaker's surviving mutants (tools/mutate.py cert-runtime --module breaker).

A "slow" call is simulated without threads: the protected function itself drives the breaker
(other calls fail, the clock advances) before it returns, which the breaker allows because its
lock is never held across the protected call.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from cert.runtime.breaker import CircuitBreaker, CircuitState
from cert.runtime.errors import CircuitOpenError, InvalidInputError
from cert.runtime.metrics import MetricsFactory


class BoomError(Exception):
    pass


def fail() -> None:
    raise BoomError("dependency down")


def make(clock: Any, **kwargs: Any) -> CircuitBreaker:
    kwargs.setdefault("failure_threshold", 1)
    kwargs.setdefault("recovery_timeout", 10.0)
    return CircuitBreaker("svc", clock=clock, **kwargs)


def reopen_and_wait(breaker: CircuitBreaker, clock: Any) -> None:
    with pytest.raises(BoomError):
        breaker.call(fail)
    clock.advance(10.0)
    assert breaker.state is CircuitState.HALF_OPEN


def test_a_late_success_after_several_transitions_is_not_a_probe(clock: Any) -> None:
    """Every transition starts a new generation; a call admitted two states ago stays stale."""
    breaker = make(clock)
    reopen_and_wait(breaker, clock)
    assert breaker.call(lambda: "probe") == "probe"  # closes: three transitions so far
    assert breaker.state is CircuitState.CLOSED

    def slow() -> str:
        reopen_and_wait(breaker, clock)  # OPEN, then HALF_OPEN, while this call runs
        return "late"

    assert breaker.call(slow) == "late"
    assert breaker.state is CircuitState.HALF_OPEN


def test_a_late_failure_does_not_reopen_a_half_open_circuit(clock: Any) -> None:
    breaker = make(clock)

    def slow_failure() -> None:
        reopen_and_wait(breaker, clock)
        raise BoomError("late")

    with pytest.raises(BoomError, match="late"):
        breaker.call(slow_failure)
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.stats().opened_count == 1


def test_a_late_async_outcome_is_ignored_either_way(clock: Any) -> None:
    breaker = make(clock)

    async def slow(fails: bool) -> str:
        reopen_and_wait(breaker, clock)
        if fails:
            raise BoomError("late")
        return "late"

    assert asyncio.run(breaker.call_async(slow, False)) == "late"
    assert breaker.state is CircuitState.HALF_OPEN
    breaker.reset()
    with pytest.raises(BoomError):
        asyncio.run(breaker.call_async(slow, True))
    assert breaker.state is CircuitState.HALF_OPEN


def test_async_failures_are_classified_by_the_raised_exception(clock: Any) -> None:
    breaker = make(clock, is_failure=lambda exc: isinstance(exc, BoomError))

    async def boom() -> None:
        raise BoomError("down")

    with pytest.raises(BoomError):
        asyncio.run(breaker.call_async(boom))
    assert breaker.state is CircuitState.OPEN


def test_keyword_arguments_reach_the_protected_function(clock: Any) -> None:
    breaker = make(clock)

    def pair(a: int, *, b: int) -> tuple[int, int]:
        return a, b

    async def apair(a: int, *, b: int) -> tuple[int, int]:
        return a, b

    assert breaker.call(pair, 1, b=2) == (1, 2)
    assert asyncio.run(breaker.call_async(apair, 3, b=4)) == (3, 4)


def test_stats_is_a_full_snapshot_and_announces_the_half_open_transition(clock: Any) -> None:
    seen: list[tuple[CircuitState, CircuitState]] = []
    breaker = make(clock, on_state_change=lambda old, new: seen.append((old, new)))
    with pytest.raises(BoomError):
        breaker.call(fail)
    clock.advance(9.5)
    stats = breaker.stats()
    assert (stats.name, stats.state, stats.retry_after) == ("svc", CircuitState.OPEN, 0.5)
    assert (stats.opened_count, stats.rejected_count) == (1, 0)
    clock.advance(0.5)
    assert seen == [(CircuitState.CLOSED, CircuitState.OPEN)]
    assert breaker.stats().state is CircuitState.HALF_OPEN  # stats() itself moves the state
    assert seen[-1] == (CircuitState.OPEN, CircuitState.HALF_OPEN)


def test_the_refusal_reports_the_time_left_below_one_second(clock: Any) -> None:
    breaker = make(clock)
    with pytest.raises(BoomError):
        breaker.call(fail)
    clock.advance(9.75)
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(lambda: None)
    assert info.value.retry_after == pytest.approx(0.25)


def test_opened_count_counts_every_opening(clock: Any) -> None:
    breaker = make(clock)
    reopen_and_wait(breaker, clock)
    with pytest.raises(BoomError):
        breaker.call(fail)  # the probe fails: open again
    assert breaker.stats().opened_count == 2


def test_a_cancelled_stale_probe_does_not_free_the_current_probes_slot(clock: Any) -> None:
    breaker = make(clock, probe_timeout=5.0)
    reopen_and_wait(breaker, clock)

    def hung_then_interrupted() -> None:
        clock.advance(5.0)  # this probe's slot expires ...
        breaker.acquire()  # ... and a new probe takes it (manual protocol, still in flight)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        breaker.call(hung_then_interrupted)
    with pytest.raises(CircuitOpenError, match="probe in flight"):
        breaker.call(lambda: None)  # the new probe still holds the slot
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED


@pytest.mark.parametrize("method", ["call", "protect"])
def test_a_non_callable_is_refused_naming_fn(clock: Any, method: str) -> None:
    breaker = make(clock)
    with pytest.raises(InvalidInputError, match=r"^fn must be callable, got 42$") as info:
        getattr(breaker, method)(42)
    assert info.value.context == {"field": "fn", "value": "42"}


def test_call_async_refuses_a_non_callable_and_a_sync_function_naming_fn(clock: Any) -> None:
    breaker = make(clock)
    with pytest.raises(InvalidInputError, match=r"^fn must be callable, got 42$"):
        asyncio.run(breaker.call_async(42))  # type: ignore[arg-type]

    def sync() -> int:
        return 7

    with pytest.raises(InvalidInputError, match=r"returned int \(use call\(\)") as info:
        asyncio.run(breaker.call_async(sync))  # type: ignore[arg-type]
    assert info.value.context == {"field": "fn", "value": repr(sync)}


def test_a_hung_probes_late_failure_does_not_count_after_its_slot_was_taken(clock: Any) -> None:
    breaker = make(clock, probe_timeout=5.0)
    reopen_and_wait(breaker, clock)

    def hung_probe() -> None:
        clock.advance(5.0)
        breaker.acquire()  # the slot goes to a new probe ...
        breaker.record_success()  # ... which closes the circuit
        raise BoomError("late")

    with pytest.raises(BoomError, match="late"):
        breaker.call(hung_probe)
    assert breaker.state is CircuitState.CLOSED


def test_refusals_are_counted_and_say_why(clock: Any) -> None:
    breaker = make(clock, probe_timeout=None)
    with pytest.raises(BoomError):
        breaker.call(fail)
    with pytest.raises(CircuitOpenError, match=r"^circuit 'svc' is open; retry after 10\.000 s$"):
        breaker.call(lambda: None)
    clock.advance(10.0)
    breaker.acquire()  # the probe, still in flight
    with pytest.raises(
        CircuitOpenError,
        match=r"^circuit 'svc' is half-open with a probe in flight; retry after 0\.000 s$",
    ):
        breaker.call(lambda: None)
    assert breaker.stats().rejected_count == 2


def test_a_manual_report_after_the_timeout_announces_both_transitions(
    clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[tuple[CircuitState, CircuitState]] = []
    breaker = make(clock, on_state_change=lambda old, new: seen.append((old, new)))
    with pytest.raises(BoomError):
        breaker.call(fail)
    clock.advance(10.0)
    seen.clear()
    with caplog.at_level(logging.INFO, logger="cert.runtime.breaker"):
        breaker.record_failure(BoomError("probe failed"))
    assert seen == [
        (CircuitState.OPEN, CircuitState.HALF_OPEN),
        (CircuitState.HALF_OPEN, CircuitState.OPEN),
    ]
    records = [r for r in caplog.records if r.name == "cert.runtime.breaker"]
    assert [r.getMessage() for r in records] == ["circuit state change"] * 2
    assert [(r.breaker, r.from_state, r.to_state) for r in records] == [  # type: ignore[attr-defined]
        ("svc", "open", "half_open"),
        ("svc", "half_open", "open"),
    ]
    clock.advance(10.0)
    seen.clear()
    breaker.record_success()
    assert seen == [
        (CircuitState.OPEN, CircuitState.HALF_OPEN),
        (CircuitState.HALF_OPEN, CircuitState.CLOSED),
    ]


def test_resetting_a_closed_breaker_announces_nothing(clock: Any) -> None:
    seen: list[tuple[CircuitState, CircuitState]] = []
    breaker = make(clock, on_state_change=lambda old, new: seen.append((old, new)))
    breaker.reset()
    assert seen == []


def test_failing_classifier_and_hook_are_logged_naming_the_breaker(
    clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_hook(old: CircuitState, new: CircuitState) -> None:
        raise RuntimeError("hook down")

    def broken_classifier(exc: BaseException) -> bool:
        raise RuntimeError("classifier down")

    breaker = make(clock, is_failure=broken_classifier, on_state_change=broken_hook)
    with caplog.at_level(logging.INFO, logger="cert.runtime.breaker"), pytest.raises(BoomError):
        breaker.call(fail)
    messages = [r.getMessage() for r in caplog.records if r.name == "cert.runtime.breaker"]
    assert "is_failure raised for breaker 'svc'; counting a failure" in messages
    assert "on_state_change hook failed for breaker 'svc'" in messages


def test_a_wrong_metrics_object_is_refused_naming_the_field(clock: Any) -> None:
    with pytest.raises(
        InvalidInputError, match=r"^metrics must be a MetricsFactory, got 42$"
    ) as info:
        make(clock, metrics=42)
    assert info.value.context == {"field": "metrics", "value": "42"}


def test_the_defaults_open_after_five_failures_for_thirty_seconds(clock: Any) -> None:
    breaker = CircuitBreaker(clock=clock)
    for _ in range(4):
        with pytest.raises(BoomError):
            breaker.call(fail)
    assert breaker.state is CircuitState.CLOSED
    with pytest.raises(BoomError):
        breaker.call(fail)
    with pytest.raises(
        CircuitOpenError, match=r"^circuit 'default' is open; retry after 30\.000 s$"
    ):
        breaker.call(lambda: None)
    clock.advance(29.999)
    assert breaker.state is CircuitState.OPEN
    clock.advance(0.001)
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.stats().name == "default"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": " "}, "name"),
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"recovery_timeout": -1.0}, "recovery_timeout"),
        ({"success_threshold": 0}, "success_threshold"),
        ({"is_failure": "yes"}, "is_failure"),
        ({"clock": 3.0}, "clock"),
        ({"on_state_change": 1}, "on_state_change"),
        ({"probe_timeout": -1.0}, "probe_timeout"),
    ],
)
def test_a_bad_argument_is_refused_naming_exactly_its_field(
    kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInputError, match=rf"^{field} must ") as info:
        CircuitBreaker(**kwargs)
    assert info.value.context["field"] == field


def test_the_metrics_explain_how_to_read_them(clock: Any) -> None:
    # The state gauge's help is the only place a dashboard author learns what 0 / 1 / 2 mean.
    registry = CollectorRegistry()
    make(clock, metrics=MetricsFactory(registry))
    help_texts = {metric.name: metric.documentation for metric in registry.collect()}
    assert help_texts == {
        "circuit_breaker_state": "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
        "circuit_breaker_rejections": (
            "Calls refused because the circuit was open or its probe slot taken."
        ),
        "circuit_breaker_transitions": "Circuit state changes, by the state entered.",
    }


def test_without_a_hook_every_announced_transition_is_still_logged(
    clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    breaker = make(clock)
    with pytest.raises(BoomError):
        breaker.call(fail)
    clock.advance(10.0)
    with caplog.at_level(logging.INFO, logger="cert.runtime.breaker"):
        breaker.record_failure(BoomError("probe failed"))  # OPEN -> HALF_OPEN -> OPEN at once
    records = [r for r in caplog.records if r.name == "cert.runtime.breaker"]
    assert [(r.from_state, r.to_state) for r in records] == [  # type: ignore[attr-defined]
        ("open", "half_open"),
        ("half_open", "open"),
    ]
