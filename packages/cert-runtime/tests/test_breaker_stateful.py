"""The breaker against a reference model, driven by hypothesis through random call sequences."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from cert.runtime.breaker import CircuitBreaker, CircuitState
from cert.runtime.errors import CircuitOpenError


class BoomError(Exception):
    pass


class IgnoredError(Exception):
    pass


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class BreakerMachine(RuleBasedStateMachine):
    """A plain reimplementation of the documented rules; the real breaker must agree with it."""

    @initialize(
        failure_threshold=st.integers(1, 4),
        success_threshold=st.integers(1, 3),
        recovery_timeout=st.sampled_from([0.0, 1.0, 5.0]),
        probe_timeout=st.sampled_from([None, 2.0]),
    )
    def setup(
        self,
        failure_threshold: int,
        success_threshold: int,
        recovery_timeout: float,
        probe_timeout: float | None,
    ) -> None:
        self.clock = Clock()
        self.breaker = CircuitBreaker(
            "model",
            failure_threshold=failure_threshold,
            success_threshold=success_threshold,
            recovery_timeout=recovery_timeout,
            is_failure=lambda exc: not isinstance(exc, IgnoredError),
            clock=self.clock,
            probe_timeout=probe_timeout,
        )
        self.ft, self.st, self.rt = failure_threshold, success_threshold, recovery_timeout
        self.pt = probe_timeout
        self.probe_started = 0.0
        self.state = CircuitState.CLOSED
        self.failures = 0
        self.successes = 0
        self.opened_at = 0.0
        self.probe_held = False

    # -- the model
    def _refresh(self) -> None:
        if self.state is CircuitState.OPEN and self.clock.now - self.opened_at >= self.rt:
            self._enter(CircuitState.HALF_OPEN)

    def _enter(self, state: CircuitState) -> None:
        self.state, self.failures, self.successes, self.probe_held = state, 0, 0, False
        if state is CircuitState.OPEN:
            self.opened_at = self.clock.now

    def _outcome(self, failed: bool) -> None:
        if self.state is CircuitState.HALF_OPEN:
            self.probe_held = False
            if failed:
                self._enter(CircuitState.OPEN)
            else:
                self.successes += 1
                if self.successes >= self.st:
                    self._enter(CircuitState.CLOSED)
        elif failed:
            self.failures += 1
            if self.failures >= self.ft:
                self._enter(CircuitState.OPEN)
        else:
            self.failures = 0

    def _admitted(self) -> bool:
        self._refresh()
        expired = self.pt is not None and self.clock.now - self.probe_started >= self.pt
        return self.state is CircuitState.CLOSED or (
            self.state is CircuitState.HALF_OPEN and (not self.probe_held or expired)
        )

    # -- rules
    @rule(kind=st.sampled_from(["ok", "boom", "ignored"]))
    def call(self, kind: str) -> None:
        def fn() -> str:
            if kind == "boom":
                raise BoomError
            if kind == "ignored":
                raise IgnoredError
            return "ok"

        expected: Any = {"ok": None, "boom": BoomError, "ignored": IgnoredError}[kind]
        if not self._admitted():
            with pytest.raises(CircuitOpenError) as info:
                self.breaker.call(fn)
            if self.state is CircuitState.OPEN:
                remaining = self.opened_at + self.rt - self.clock.now
                assert info.value.retry_after == pytest.approx(remaining)
            return
        if expected is None:
            assert self.breaker.call(fn) == "ok"
        else:
            with pytest.raises(expected):
                self.breaker.call(fn)
        self._outcome(failed=kind == "boom")

    @rule(seconds=st.sampled_from([0.5, 1.0, 2.5, 5.0]))
    def advance(self, seconds: float) -> None:
        self.clock.now += seconds

    @precondition(lambda self: not self.probe_held)
    @rule()
    def hold_probe(self) -> None:
        """Take the half-open probe slot by hand (acquire) and keep it."""
        if self._admitted() and self.state is CircuitState.HALF_OPEN:
            self.breaker.acquire()
            self.probe_held = True
            self.probe_started = self.clock.now

    @precondition(lambda self: self.probe_held)
    @rule(failed=st.booleans())
    def finish_probe(self, failed: bool) -> None:
        if failed:
            self.breaker.record_failure(BoomError())
        else:
            self.breaker.record_success()
        self._outcome(failed)

    @invariant()
    def states_agree(self) -> None:
        if hasattr(self, "breaker"):
            self._refresh()
            assert self.breaker.state is self.state
            stats = self.breaker.stats()
            assert stats.consecutive_failures == self.failures
            assert stats.half_open_successes == self.successes


BreakerMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestBreakerMachine = BreakerMachine.TestCase
