from __future__ import annotations

import contextlib
import dataclasses
import math
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from fusion_ops.config import load_governance_config
from fusion_ops.errors import (
    ApprovalRequiredError,
    BudgetDeniedError,
    BudgetExhaustedError,
    EmergencyBrakeError,
    InvalidInputError,
    ReservationError,
    ReviewRequiredError,
)
from fusion_ops.governance import Alert, CostEstimate, EnergyGovernor


def test_estimate_applies_each_multiplier_with_a_breakdown() -> None:
    gov = EnergyGovernor(100_000)
    plain = gov.estimate(1000)
    assert plain.cost == 1000
    assert plain.multiplier == 1
    assert [m.factor for m in plain.breakdown] == [
        "high_complexity",
        "low_trust",
        "high_entropy",
        "emergency_discount",
    ]
    assert not any(m.applied for m in plain.breakdown)
    full = gov.estimate(1000, complexity=0.9, trust_score=0.3, entropy=0.9)
    assert full.cost == pytest.approx(1000 * 1.5 * 1.3 * 1.4)
    assert all(m.applied for m in full.breakdown[:3])
    emergency = gov.estimate(1000, emergency=True)
    assert emergency.cost == pytest.approx(600)


def test_estimate_thresholds_are_strict() -> None:
    gov = EnergyGovernor(100_000)
    at_edges = gov.estimate(100, complexity=0.7, trust_score=0.6, entropy=0.72)
    assert at_edges.cost == 100


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"base_cost": -1}, "base_cost must be >= 0"),
        ({"base_cost": float("nan")}, "base_cost must be finite"),
        ({"base_cost": "10"}, "base_cost must be a number"),
        ({"base_cost": 1e20}, "base_cost must be <="),
        ({"base_cost": 1, "complexity": 1.2}, "complexity must be <= 1"),
        ({"base_cost": 1, "trust_score": True}, "trust_score must be a number"),
        ({"base_cost": 1, "entropy": float("inf")}, "entropy must be finite"),
        ({"base_cost": 1, "emergency": "yes"}, "emergency must be a bool"),
    ],
)
def test_estimate_rejects_bad_input(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        EnergyGovernor(100).estimate(**kwargs)


def test_bad_budget_and_request_arguments() -> None:
    for budget in (0, -5, float("nan"), True):
        with pytest.raises(InvalidInputError, match="period_budget"):
            EnergyGovernor(budget)
    gov = EnergyGovernor(100)
    with pytest.raises(InvalidInputError, match="CostEstimate"):
        gov.request(50)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="reviewed_by must not be empty"):
        gov.request(gov.estimate(1), reviewed_by=" ")
    r = gov.request(gov.estimate(10))
    with pytest.raises(InvalidInputError, match="actual_cost"):
        gov.commit(r, actual_cost=-1)
    assert gov.snapshot().open_reservations == 1  # a rejected commit keeps the reservation


def test_request_commit_release_ledger() -> None:
    gov = EnergyGovernor(1000)
    a = gov.request(gov.estimate(100))
    b = gov.request(gov.estimate(200))
    snap = gov.snapshot()
    assert (snap.reserved, snap.committed, snap.available) == (300, 0, 700)
    assert gov.commit(a, actual_cost=80) == 80
    gov.release(b.id)
    snap = gov.snapshot()
    assert (snap.reserved, snap.committed, snap.available, snap.open_reservations) == (
        0,
        80,
        920,
        0,
    )
    with pytest.raises(ReservationError, match="already settled"):
        gov.commit(a)
    with pytest.raises(ReservationError):
        gov.release("nope")


def test_overrun_is_recorded() -> None:
    gov = EnergyGovernor(1000)
    r = gov.request(gov.estimate(100))
    gov.commit(r, actual_cost=150)
    snap = gov.snapshot()
    assert snap.committed == 150
    assert snap.overrun == 50


def test_review_needed_above_auto_review_threshold() -> None:
    gov = EnergyGovernor(1000)
    gov.request(gov.estimate(850))
    with pytest.raises(ReviewRequiredError, match="auto_review_threshold") as denied:
        gov.request(gov.estimate(10))
    assert denied.value.reason == "review_required"
    reviewed = gov.request(gov.estimate(10), reviewed_by="alice")
    assert reviewed.reviewed_by == "alice"
    assert gov.snapshot().outcomes == {"admitted": 2, "review_required": 1}


def test_emergency_brake_admits_only_emergency_work() -> None:
    gov = EnergyGovernor(1000)
    gov.request(gov.estimate(900), reviewed_by="bob")
    with pytest.raises(EmergencyBrakeError):
        gov.request(gov.estimate(60), reviewed_by="bob")
    urgent = gov.request(gov.estimate(60, emergency=True))  # 36 units after the discount
    assert urgent.emergency
    assert urgent.cost == pytest.approx(36)
    snap = gov.snapshot()
    assert snap.utilisation == pytest.approx(0.936)
    gov.request(gov.estimate(100, emergency=True))
    assert gov.snapshot().brake_engaged
    with pytest.raises(EmergencyBrakeError):
        gov.request(gov.estimate(1), reviewed_by="bob")


def test_nothing_may_exceed_the_budget() -> None:
    gov = EnergyGovernor(1000)
    gov.request(gov.estimate(900), reviewed_by="x")
    with pytest.raises(BudgetExhaustedError):
        gov.request(gov.estimate(200, emergency=True))  # 120 > 100 left


def test_approval_threshold_needs_a_single_use_token() -> None:
    gov = EnergyGovernor(1_000_000)
    big = gov.estimate(20_000)
    with pytest.raises(ApprovalRequiredError):
        gov.request(big)
    small_token = gov.grant_approval(15_000, "cfo")
    with pytest.raises(ApprovalRequiredError):
        gov.request(big, approval_token=small_token)  # does not cover the cost
    with pytest.raises(ApprovalRequiredError):
        gov.request(big, approval_token="forged")
    token = gov.grant_approval(25_000, "cfo")
    admitted = gov.request(big, approval_token=token)
    assert admitted.approved_by == "cfo"
    with pytest.raises(ApprovalRequiredError):
        gov.request(big, approval_token=token)  # used up


def test_denied_request_does_not_consume_the_token() -> None:
    gov = EnergyGovernor(15_000)
    token = gov.grant_approval(20_000, "cfo")
    with pytest.raises(EmergencyBrakeError):
        gov.request(gov.estimate(16_000), approval_token=token)
    assert (
        gov.request(gov.estimate(11_000), approval_token=token, reviewed_by="x").approved_by
        == "cfo"
    )


def test_alerts_fire_once_per_period() -> None:
    fired: list[Alert] = []
    registry = CollectorRegistry()
    gov = EnergyGovernor(1000, period="p1", on_alert=fired.append, registry=registry)
    gov.request(gov.estimate(860), reviewed_by="x")
    gov.request(gov.estimate(10), reviewed_by="x")
    assert [a.level for a in fired] == ["auto_review"]
    gov.request(gov.estimate(150, emergency=True))
    gov.request(gov.estimate(10, emergency=True))
    assert [a.level for a in fired] == ["auto_review", "emergency_brake"]
    assert (
        registry.get_sample_value("fusion_budget_alert_active", {"level": "emergency_brake"}) == 1
    )
    gov.start_period("p2")
    assert gov.snapshot().alerts_fired == ()
    assert registry.get_sample_value("fusion_budget_alert_active", {"level": "auto_review"}) == 0
    gov.request(gov.estimate(900), reviewed_by="x")
    assert [a.period for a in fired] == ["p1", "p1", "p2"]


def test_new_period_lapses_open_reservations() -> None:
    gov = EnergyGovernor(1000, period="mon")
    r = gov.request(gov.estimate(500))
    gov.start_period("tue", budget=2000)
    snap = gov.snapshot()
    assert (snap.period, snap.budget, snap.reserved) == ("tue", 2000, 0)
    with pytest.raises(ReservationError):
        gov.commit(r)


def test_metrics_on_the_passed_registry() -> None:
    registry = CollectorRegistry()
    gov = EnergyGovernor(1000, registry=registry)
    r = gov.request(gov.estimate(100))
    gov.commit(r)
    with pytest.raises(BudgetExhaustedError):
        gov.request(gov.estimate(2000, emergency=True))
    assert registry.get_sample_value("fusion_budget_requests_total", {"outcome": "admitted"}) == 1
    assert (
        registry.get_sample_value("fusion_budget_requests_total", {"outcome": "budget_exhausted"})
        == 1
    )
    assert registry.get_sample_value("fusion_budget_committed_units_total") == 100
    assert registry.get_sample_value("fusion_budget_utilisation_ratio") == pytest.approx(0.1)


def test_config_overrides_change_the_rules() -> None:
    config = load_governance_config(overrides={"budget_limits": {"auto_review_threshold": 50}})
    gov = EnergyGovernor(100, config=config)
    with pytest.raises(ReviewRequiredError):
        gov.request(gov.estimate(60))


@pytest.mark.slow
def test_32_threads_times_10k_requests_never_overspend() -> None:
    budget = 200_000.0
    gov = EnergyGovernor(budget)
    errors: list[BaseException] = []
    admitted = [0] * 32
    start = threading.Barrier(32)

    def worker(i: int) -> None:
        try:
            start.wait()
            for j in range(10_000):
                estimate = gov.estimate(1 + (i + j) % 7, emergency=(j % 11 == 0))
                try:
                    r = gov.request(estimate, reviewed_by="load-test")
                except (EmergencyBrakeError, BudgetExhaustedError):
                    continue
                admitted[i] += 1
                if j % 3 == 0:
                    gov.release(r)
                else:
                    gov.commit(r)
                snap = gov.snapshot() if j % 997 == 0 else None
                if snap is not None:
                    assert snap.committed + snap.reserved <= budget + 1e-6
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    snap = gov.snapshot()
    assert snap.reserved == pytest.approx(0, abs=1e-6)
    assert snap.open_reservations == 0
    assert snap.committed <= budget
    assert snap.committed > 0.9 * budget  # the budget was actually contended for
    total = sum(snap.outcomes.values())
    assert total == 320_000
    assert snap.outcomes["admitted"] == sum(admitted)
    assert snap.alerts_fired == ("auto_review", "emergency_brake")


# ---------------------------------------------------------------- fail closed on bad numbers
BAD_COSTS = [float("nan"), float("inf"), -float("inf"), -500.0, 10**400, 2e15]
BAD_IDS = ["nan", "inf", "-inf", "negative", "huge-int", "above-max"]


def _forge(estimate: CostEstimate, **fields: Any) -> CostEstimate:
    """Bypass the constructor's checks, as a caller mutating a frozen dataclass could."""
    for name, value in fields.items():
        object.__setattr__(estimate, name, value)
    return estimate


@pytest.mark.parametrize("cost", BAD_COSTS, ids=BAD_IDS)
def test_an_estimate_with_a_bad_cost_cannot_be_made(cost: float) -> None:
    gov = EnergyGovernor(1000)
    with pytest.raises(InvalidInputError, match=r"estimate\.cost"):
        dataclasses.replace(gov.estimate(900), cost=cost)


@pytest.mark.parametrize("cost", BAD_COSTS, ids=BAD_IDS)
def test_request_refuses_a_forged_cost_and_the_ledger_stays_intact(cost: float) -> None:
    registry = CollectorRegistry()
    gov = EnergyGovernor(1000, registry=registry)
    for _ in range(20):
        with pytest.raises(InvalidInputError, match=r"estimate\.cost"):
            gov.request(_forge(gov.estimate(900), cost=cost), reviewed_by="x")
    snap = gov.snapshot()
    assert (snap.reserved, snap.available, snap.utilisation) == (0, 1000, 0)
    assert snap.outcomes == {"invalid_estimate": 20}
    assert (
        registry.get_sample_value("fusion_budget_requests_total", {"outcome": "invalid_estimate"})
        == 20
    )
    gov.request(gov.estimate(900), reviewed_by="x")
    with pytest.raises(BudgetDeniedError):
        gov.request(gov.estimate(900), reviewed_by="x")


def test_a_negative_cost_never_raises_the_available_budget() -> None:
    gov = EnergyGovernor(1000)
    with pytest.raises(InvalidInputError):
        gov.request(_forge(gov.estimate(500), cost=-500.0, base_cost=-500.0))
    assert gov.snapshot().available == 1000


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"cost": 1.0}, "estimate.cost 1 is not base_cost 1000"),
        ({"multiplier": 0.001, "cost": 1.0}, "not the product"),
        ({"emergency": "yes"}, "estimate.emergency must be a bool"),
        ({"breakdown": ()}, "must list the factors"),
        ({"base_cost": float("nan")}, "estimate.base_cost must be finite"),
    ],
)
def test_request_refuses_inconsistent_estimates(fields: dict[str, Any], match: str) -> None:
    gov = EnergyGovernor(100_000)
    with pytest.raises(InvalidInputError, match=match):
        gov.request(_forge(gov.estimate(1000), **fields), reviewed_by="x")
    assert gov.snapshot().reserved == 0


def test_request_refuses_multipliers_this_governor_did_not_configure() -> None:
    gov = EnergyGovernor(100_000)
    cheap = dataclasses.replace(gov.estimate(1000, emergency=True).breakdown[3], multiplier=0.001)
    forged = CostEstimate(1000, 1.0, 0.001, True, (*gov.estimate(1000).breakdown[:3], cheap))
    with pytest.raises(InvalidInputError, match=r"not this governor's 0\.6"):
        gov.request(forged)
    other = EnergyGovernor(
        100_000, config=load_governance_config(overrides={"multipliers": {"low_trust": 3.0}})
    )
    with pytest.raises(InvalidInputError, match="low_trust"):
        gov.request(other.estimate(1000, trust_score=0.1))
    claims_emergency = dataclasses.replace(gov.estimate(1000), emergency=True)
    with pytest.raises(InvalidInputError, match="emergency must match"):
        gov.request(claims_emergency)


def test_huge_integers_are_typed_errors_not_overflow() -> None:
    gov = EnergyGovernor(1000)
    with pytest.raises(InvalidInputError, match="base_cost must be finite"):
        gov.estimate(10**400)
    with pytest.raises(InvalidInputError, match="period_budget"):
        EnergyGovernor(10**400)
    r = gov.request(gov.estimate(10))
    with pytest.raises(InvalidInputError, match="actual_cost"):
        gov.commit(r, actual_cost=10**400)
    with pytest.raises(InvalidInputError, match="max_cost"):
        gov.grant_approval(10**400, "cfo")


def test_a_bad_new_period_leaves_the_ledger_untouched() -> None:
    gov = EnergyGovernor(1000, period="mon")
    r = gov.request(gov.estimate(300))
    for budget in (float("nan"), -1, 0):
        with pytest.raises(InvalidInputError, match="period_budget"):
            gov.start_period("tue", budget=budget)
    snap = gov.snapshot()
    assert (snap.period, snap.budget, snap.reserved) == ("mon", 1000, 300)
    assert gov.commit(r) == 300


def test_a_new_period_voids_unused_approval_tokens() -> None:
    gov = EnergyGovernor(1_000_000, period="mon")
    token = gov.grant_approval(50_000, "cfo")
    gov.start_period("tue")
    with pytest.raises(ApprovalRequiredError):
        gov.request(gov.estimate(20_000), approval_token=token)
    fresh = gov.grant_approval(50_000, "cfo")
    assert gov.request(gov.estimate(20_000), approval_token=fresh).approved_by == "cfo"


def test_the_governor_refuses_a_config_of_the_wrong_type() -> None:
    with pytest.raises(InvalidInputError, match="config must be a GovernanceConfig"):
        EnergyGovernor(100, config={"budget_limits": {}})  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers()),
            st.booleans(),
        ),
        max_size=30,
    )
)
def test_admitted_reservations_never_exceed_the_budget_whatever_is_passed(
    attempts: list[tuple[float, bool]],
) -> None:
    gov = EnergyGovernor(1000)
    for cost, emergency in attempts:
        estimate = gov.estimate(1, emergency=emergency)
        with contextlib.suppress(InvalidInputError, BudgetDeniedError):
            gov.request(_forge(estimate, cost=cost, base_cost=cost), reviewed_by="x")
        snap = gov.snapshot()
        assert math.isfinite(snap.utilisation)
        assert 0 <= snap.reserved <= snap.budget == 1000


def test_messages_about_integers_too_long_for_repr_do_not_crash() -> None:
    with pytest.raises(InvalidInputError, match="base_cost must be finite, got an integer of"):
        EnergyGovernor(1000).estimate(10**5000)


def test_a_failing_alert_callback_refuses_the_request_and_holds_no_budget() -> None:
    """The callback raises after admission: the caller hears the error and never gets a
    reservation, so nothing stays reserved (it used to hold budget until release_stale)."""

    def pager_down(alert: Alert) -> None:
        raise ConnectionError("pager unreachable")

    gov = EnergyGovernor(1000, period="p1", on_alert=pager_down)
    with pytest.raises(ConnectionError, match="pager unreachable"):
        gov.request(gov.estimate(900), reviewed_by="qa")
    snap = gov.snapshot()
    assert snap.reserved == 0
    assert snap.committed == 0
