"""Health aggregation rules, return forms, raising checks, liveness vs readiness, bad input."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cert.runtime.breaker import CircuitBreaker
from cert.runtime.errors import InvalidInputError
from cert.runtime.health import (
    CheckResult,
    HealthRegistry,
    HealthStatus,
    aggregate,
    breaker_check,
)

H, D, U = HealthStatus.HEALTHY, HealthStatus.DEGRADED, HealthStatus.UNHEALTHY


def test_empty_registry_is_healthy() -> None:
    report = HealthRegistry().check()
    assert report.status is H
    assert report.checks == []
    assert report.timestamp.endswith("+00:00")


def test_return_forms_are_normalised() -> None:
    reg = HealthRegistry()
    reg.register("bool_ok", lambda: True)
    reg.register("status", lambda: HealthStatus.DEGRADED)
    reg.register(
        "result", lambda: CheckResult("ignored-name", H, detail="fine", data={"models": 2})
    )
    report = reg.check()
    by_name = {c.name: c for c in report.checks}
    assert [c.name for c in report.checks] == ["bool_ok", "status", "result"]
    assert by_name["bool_ok"].status is H
    assert by_name["status"].status is D
    assert by_name["result"].data == {"models": 2}
    assert report.status is D


def test_critical_unhealthy_makes_the_report_unhealthy() -> None:
    reg = HealthRegistry()
    reg.register("db", lambda: False)
    reg.register("cache", lambda: HealthStatus.DEGRADED, critical=False)
    assert reg.check().status is U


def test_non_critical_failure_only_degrades() -> None:
    reg = HealthRegistry()
    reg.register("db", lambda: True)
    reg.register("cache", lambda: False, critical=False)
    report = reg.check()
    assert report.status is D
    assert report.checks[1].status is U  # the check keeps its own verdict


def test_raising_checks_and_secret_redaction_in_detail() -> None:
    def boom() -> bool:
        raise ConnectionError("cannot reach http://x with token=abcdef123456")

    reg = HealthRegistry()
    reg.register("critical", boom)
    reg.register("optional", boom, critical=False)
    report = reg.check()
    crit, opt = report.checks
    assert crit.status is U
    assert opt.status is D
    assert "ConnectionError" in crit.detail
    assert "abcdef123456" not in crit.detail
    assert report.status is U


def test_bad_return_value_is_a_failed_check() -> None:
    reg = HealthRegistry()
    reg.register("weird", lambda: "yes")  # type: ignore[arg-type, return-value]
    reg.register("bad_status", lambda: CheckResult("x", "healthy"))  # type: ignore[arg-type]
    report = reg.check()
    assert [c.status for c in report.checks] == [U, U]
    assert "InvalidInputError" in report.checks[0].detail


def test_liveness_runs_only_liveness_checks_readiness_runs_all() -> None:
    calls: list[str] = []

    def check(name: str, ok: bool) -> Any:
        def run() -> bool:
            calls.append(name)
            return ok

        return run

    reg = HealthRegistry()
    reg.register("event_loop", check("event_loop", True), liveness=True)
    reg.register("model", check("model", False))
    assert reg.liveness().status is H
    assert calls == ["event_loop"]
    assert reg.readiness().status is U
    assert calls == ["event_loop", "event_loop", "model"]


def test_report_serialises_to_json() -> None:
    reg = HealthRegistry()
    reg.register("a", lambda: CheckResult("a", D, "slow", {"p99_ms": 120.5}), critical=False)
    payload = json.loads(json.dumps(reg.check().to_dict()))
    assert payload["status"] == "degraded"
    assert payload["checks"][0]["status"] == "degraded"
    assert payload["checks"][0]["data"] == {"p99_ms": 120.5}
    assert payload["checks"][0]["critical"] is False
    assert payload["checks"][0]["duration_s"] >= 0


def test_register_rules() -> None:
    reg = HealthRegistry()
    reg.register("a", lambda: True)
    with pytest.raises(InvalidInputError, match="already registered"):
        reg.register("a", lambda: True)
    with pytest.raises(InvalidInputError, match="name"):
        reg.register("", lambda: True)
    with pytest.raises(InvalidInputError, match="check"):
        reg.register("b", "not callable")  # type: ignore[arg-type]
    reg.unregister("a")
    assert reg.names == []
    with pytest.raises(InvalidInputError, match="no health check"):
        reg.unregister("a")


def test_concurrent_registration_and_checks() -> None:
    reg = HealthRegistry()
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            for j in range(50):
                reg.register(f"c{i}_{j}", lambda: True)
                reg.check()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert len(reg.names) == 200
    assert reg.check().status is H


statuses = st.sampled_from(list(HealthStatus))


@given(st.lists(st.tuples(statuses, st.booleans()), max_size=12))
def test_aggregate_matches_the_documented_rules(items: list[tuple[HealthStatus, bool]]) -> None:
    results = [CheckResult(f"c{i}", s, critical=c) for i, (s, c) in enumerate(items)]
    verdict = aggregate(results)
    if any(s is U and c for s, c in items):
        assert verdict is U
    elif any(s is not H for s, _ in items):
        assert verdict is D
    else:
        assert verdict is H


def test_breaker_check_follows_the_circuit(clock: Any) -> None:
    breaker = CircuitBreaker("llm_api", failure_threshold=1, recovery_timeout=5.0, clock=clock)
    reg = HealthRegistry()
    reg.register("llm_api", breaker_check(breaker), critical=False)
    assert reg.check().status is H
    with pytest.raises(ZeroDivisionError):
        breaker.call(lambda: 1 / 0)
    report = reg.check()
    assert report.status is D  # non-critical: an open circuit degrades the service
    assert report.checks[0].status is U
    assert report.checks[0].data["state"] == "open"
    assert report.checks[0].data["retry_after"] == pytest.approx(5.0)
    clock.advance(5.0)
    assert reg.check().checks[0].status is D
    json.dumps(reg.check().to_dict())
    with pytest.raises(InvalidInputError, match="breaker"):
        breaker_check("not a breaker")  # type: ignore[arg-type]


def test_a_hanging_check_times_out_instead_of_hanging_the_report() -> None:
    from cert.runtime.logging import correlation_scope, get_correlation_id

    release = threading.Event()
    seen_cid: list[str | None] = []

    def hangs() -> bool:
        seen_cid.append(get_correlation_id())
        release.wait(30)
        return True

    reg = HealthRegistry()
    reg.register("stuck", hangs, timeout_s=0.05)
    reg.register("fine", lambda: True, timeout_s=5.0)
    reg.register("optional_stuck", hangs, critical=False, timeout_s=0.05)
    try:
        with correlation_scope("health-1"):
            report = reg.check()
    finally:
        release.set()
    stuck, fine, optional = report.checks
    assert stuck.status is U
    assert "CERTTimeoutError" in stuck.detail
    assert fine.status is H
    assert optional.status is D
    assert report.status is U
    assert seen_cid[0] == "health-1"


def test_timed_check_errors_propagate_as_failures() -> None:
    def boom() -> bool:
        raise OSError("disk gone")

    reg = HealthRegistry()
    reg.register("disk", boom, timeout_s=5.0)
    (result,) = reg.check().checks
    assert result.status is U
    assert "OSError: disk gone" in result.detail


@pytest.mark.parametrize("bad", [-1.0, float("nan"), "1", True])
def test_bad_timeouts(bad: Any) -> None:
    with pytest.raises(InvalidInputError, match="timeout_s"):
        HealthRegistry().register("x", lambda: True, timeout_s=bad)


def test_a_hanging_check_keeps_one_worker_thread_and_is_reported_pending() -> None:
    release = threading.Event()
    calls: list[int] = []

    def hangs() -> bool:
        calls.append(1)
        release.wait(30)
        return True

    reg = HealthRegistry()
    reg.register("stuck", hangs, timeout_s=0.02)  # long enough for a fresh worker to answer
    before = threading.active_count()
    try:
        reports = [reg.check() for _ in range(150)]
        during = threading.active_count()
    finally:
        release.set()
    assert during - before <= 1  # was 150: one abandoned thread per run
    assert len(calls) == 1
    for report in reports:
        (result,) = report.checks
        assert result.status is U
        assert result.data["pending"] is True
        assert result.data["running_s"] >= 0
    # once the worker answers, the next run starts a fresh one and sees its result
    for _ in range(500):
        (result,) = reg.check().checks
        if result.status is H:
            break
        time.sleep(0.01)
    assert result.status is H
    assert result.data == {}
