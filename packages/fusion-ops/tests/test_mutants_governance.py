"""Tests that kill the energy governor's surviving mutants (tools/mutate.py fusion-ops --module
governance).

Each test pins a boundary or an observable the main suite reached without checking: the
admission limits at exact equality, the estimate's reasons, every check of a hand-made
estimate, the denial messages, the snapshot's rounding and flags, the alert record, the
gauges and the structured log events.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from fusion_ops.config import load_governance_config
from fusion_ops.errors import (
    ApprovalRequiredError,
    BudgetExhaustedError,
    EmergencyBrakeError,
    InvalidInputError,
    ReviewRequiredError,
)
from fusion_ops.governance import (
    MAX_COST,
    Alert,
    CostEstimate,
    EnergyGovernor,
    MultiplierApplied,
)
from fusion_ops.ledger_store import MemoryLedgerStore, open_ledger_store

LOGGER = "fusion_ops.governance"


class Clock:
    """A settable clock, so timestamps and reservation ages are exact."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, Any]]:
    """The JSON log records of one event name, in order."""
    out = []
    for record in caplog.records:
        if record.name == LOGGER:
            payload = json.loads(record.getMessage())
            if payload["event"] == name:
                out.append(payload | {"_level": record.levelno})
    return out


def gauge(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


# ---------------------------------------------------------------- estimate
def test_estimate_reasons_say_which_side_of_each_threshold() -> None:
    gov = EnergyGovernor(100_000)
    high = gov.estimate(10, complexity=0.9, trust_score=0.3, entropy=0.8, emergency=True)
    assert [(m.applied, m.multiplier, m.reason) for m in high.breakdown] == [
        (True, 1.5, "complexity 0.90 > 0.7"),
        (True, 1.3, "trust 0.30 < floor 0.6"),
        (True, 1.4, "entropy 0.80 > 0.72"),
        (True, 0.6, "emergency mode"),
    ]
    low = gov.estimate(10, complexity=0.7, trust_score=0.6, entropy=0.72)
    assert [(m.applied, m.multiplier, m.reason) for m in low.breakdown] == [
        (False, 1.5, "complexity 0.70 <= 0.7"),
        (False, 1.3, "trust 0.60 >= floor 0.6"),
        (False, 1.4, "entropy 0.72 <= 0.72"),
        (False, 0.6, "normal mode"),
    ]
    assert high.emergency
    assert not low.emergency
    assert high.base_cost == low.base_cost == 10


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_cost": -1}, "base_cost must be >= 0, got -1"),
        ({"base_cost": 1, "emergency": "yes"}, "emergency must be a bool, got 'yes'"),
        ({"complexity": -0.1}, "complexity must be >= 0, got -0.1"),
        ({"trust_score": -0.1}, "trust_score must be >= 0, got -0.1"),
        ({"trust_score": 1.01}, "trust_score must be <= 1, got 1.01"),
        ({"entropy": -0.1}, "entropy must be >= 0, got -0.1"),
        ({"entropy": 1.01}, "entropy must be <= 1, got 1.01"),
    ],
)
def test_estimate_signals_outside_zero_to_one_are_refused_by_name(
    kwargs: dict[str, float], message: str
) -> None:
    with pytest.raises(InvalidInputError) as refused:
        EnergyGovernor(100).estimate(**({"base_cost": 1} | kwargs))
    assert str(refused.value) == message


def test_an_estimate_converts_to_a_plain_dict() -> None:
    as_dict = EnergyGovernor(100).estimate(10, emergency=True).to_dict()
    assert (as_dict["base_cost"], as_dict["cost"], as_dict["emergency"]) == (10, 6, True)
    assert as_dict["breakdown"][3] == {
        "factor": "emergency_discount",
        "applied": True,
        "multiplier": 0.6,
        "reason": "emergency mode",
    }


def test_estimate_accepts_the_ends_of_each_range() -> None:
    gov = EnergyGovernor(100_000)
    assert gov.estimate(0).cost == 0
    top = gov.estimate(MAX_COST)
    assert top.cost == MAX_COST
    assert gov.estimate(1, complexity=1, trust_score=0, entropy=1).cost == pytest.approx(
        1.5 * 1.3 * 1.4
    )
    assert gov.estimate(1, complexity=0, trust_score=1, entropy=0).cost == 1


def test_an_estimate_above_the_cost_limit_is_refused_by_name() -> None:
    gov = EnergyGovernor(100)
    with pytest.raises(
        InvalidInputError, match=r"^estimated cost 1\.5e\+15 exceeds the limit 1e\+15$"
    ):
        gov.estimate(MAX_COST, complexity=0.9)


# ---------------------------------------------------------------- hand-made estimates
def _parts(gov: EnergyGovernor, **kwargs: Any) -> tuple[MultiplierApplied, ...]:
    return gov.estimate(1, **kwargs).breakdown


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda p: CostEstimate(10, 10, 1.0, False, list(p)),
            r"^estimate\.breakdown must be a tuple of MultiplierApplied$",
        ),
        (
            lambda p: CostEstimate(10, 10, 1.0, False, (*p, "x")),
            r"^estimate\.breakdown must be a tuple of MultiplierApplied$",
        ),
        (
            lambda p: CostEstimate(10, 10, 1.0, False, (MultiplierApplied("", False, 2.0, "r"),)),
            r"^estimate\.breakdown factor must not be empty$",
        ),
        (
            lambda p: CostEstimate(
                10, 10, 1.0, False, (MultiplierApplied("f" * 101, False, 2.0, "r"),)
            ),
            r"^estimate\.breakdown factor is too long: 101 characters \(limit 100\)$",
        ),
        (
            lambda p: CostEstimate(10, 10, 1.0, False, (MultiplierApplied("f", False, 0.0, "r"),)),
            r"^estimate\.breakdown\['f'\]\.multiplier must be > 0",
        ),
        (
            lambda p: CostEstimate(10, 10, 1.0, False, (MultiplierApplied("f", 1, 1.0, "r"),)),
            r"^estimate\.breakdown\['f'\]\.applied must be a bool$",
        ),
        (lambda p: CostEstimate(10, 0, 0.0, False, ()), r"^estimate\.multiplier must be > 0"),
        (lambda p: CostEstimate(2e15, 2e15, 1.0, False, ()), r"^estimate\.base_cost must be <="),
        (
            lambda p: CostEstimate(
                MAX_COST, 2 * MAX_COST, 2.0, False, (MultiplierApplied("f", True, 2.0, "r"),)
            ),
            r"^estimate\.cost must be <= 1000000000000000\.0, got 2000000000000000\.0$",
        ),
        (lambda p: CostEstimate(-1, 0, 1.0, False, ()), r"^estimate\.base_cost must be >= 0"),
        (lambda p: CostEstimate(10, -10, 1.0, False, ()), r"^estimate\.cost must be >= 0"),
        (
            lambda p: CostEstimate(10, 10, 1.0, "yes", ()),
            r"^estimate\.emergency must be a bool, got 'yes'$",
        ),
        (
            lambda p: CostEstimate(10, 20, 2.0, False, ()),
            r"^estimate\.multiplier 2 is not the product 1 of the applied factors$",
        ),
        (
            lambda p: CostEstimate(10, 11, 1.0, False, ()),
            r"^estimate\.cost 11 is not base_cost 10 x multiplier 1$",
        ),
    ],
)
def test_a_malformed_estimate_cannot_be_made(make: Any, match: str) -> None:
    parts = _parts(EnergyGovernor(100))
    with pytest.raises(InvalidInputError, match=match):
        make(parts)


def test_an_estimate_at_the_cost_limit_can_be_made() -> None:
    assert CostEstimate(MAX_COST, MAX_COST, 1.0, False, ()).cost == MAX_COST
    factor = MultiplierApplied("f" * 100, True, 2.0, "r")
    assert CostEstimate(1, 2, 2.0, False, (factor,)).multiplier == 2.0


def test_only_applied_factors_enter_the_product() -> None:
    skipped = MultiplierApplied("f", False, 3.0, "not applied")
    assert CostEstimate(10, 10, 1.0, False, (skipped,)).cost == 10
    with pytest.raises(InvalidInputError, match="not the product"):
        CostEstimate(10, 30, 3.0, False, (skipped,))


def test_the_consistency_checks_are_tight() -> None:
    """Off by one part in a million is refused; float rounding (1e-12 relative) is not."""
    with pytest.raises(InvalidInputError, match="not the product"):
        CostEstimate(10, 10 * 1.000001, 1.000001, False, ())
    with pytest.raises(InvalidInputError, match="is not base_cost"):
        CostEstimate(10, 10.00001, 1.0, False, ())
    with pytest.raises(InvalidInputError, match="is not base_cost"):
        CostEstimate(0, 1e-6, 1.0, False, ())
    assert CostEstimate(10, 10 * (1 + 1e-12), 1.0 + 1e-12, False, ()).cost > 10
    assert CostEstimate(0, 1e-13, 1.0, False, ()).cost == 1e-13


def test_request_refuses_a_breakdown_with_a_factor_twice_or_missing() -> None:
    gov = EnergyGovernor(100_000)
    parts = _parts(gov)
    names = "['emergency_discount', 'high_complexity', 'high_entropy', 'low_trust']"
    for breakdown in ((*parts, parts[0]), parts[1:]):
        forged = CostEstimate(1, 1, 1.0, False, breakdown)
        with pytest.raises(InvalidInputError) as refused:
            gov.request(forged)
        assert str(refused.value) == f"estimate.breakdown must list the factors {names} once each"
    assert gov.snapshot().outcomes == {"invalid_estimate": 2}


def test_request_names_the_foreign_multiplier() -> None:
    gov = EnergyGovernor(100_000)
    other = EnergyGovernor(
        100_000, config=load_governance_config(overrides={"multipliers": {"low_trust": 3.0}})
    )
    with pytest.raises(InvalidInputError) as refused:
        gov.request(other.estimate(10, trust_score=0.1))
    assert str(refused.value) == (
        "estimate.breakdown['low_trust'].multiplier 3 is not this governor's 1.3: "
        "make estimates with estimate()"
    )
    nearly = EnergyGovernor(
        100_000,
        config=load_governance_config(overrides={"multipliers": {"low_trust": 1.3 * 1.000001}}),
    )
    with pytest.raises(InvalidInputError, match="low_trust"):
        gov.request(nearly.estimate(10))  # not applied, but still not this governor's factor


def test_an_estimate_claiming_no_emergency_with_the_discount_applied_is_refused() -> None:
    gov = EnergyGovernor(100_000)
    discounted = gov.estimate(1000, emergency=True)
    with pytest.raises(InvalidInputError) as refused:
        gov.request(dataclasses.replace(discounted, emergency=False))
    assert str(refused.value) == (
        "estimate.emergency must match whether the emergency discount was applied"
    )


# ---------------------------------------------------------------- request arguments
def test_request_argument_checks_name_the_argument() -> None:
    gov = EnergyGovernor(1000)
    with pytest.raises(InvalidInputError) as refused:
        gov.request(gov.estimate(1), approval_token=5)  # type: ignore[arg-type]
    assert str(refused.value) == "approval_token must be a string"
    with pytest.raises(InvalidInputError) as refused:
        gov.request({"cost": 1})  # type: ignore[arg-type]
    assert str(refused.value) == "estimate must be a CostEstimate from estimate(), got dict"
    with pytest.raises(InvalidInputError, match=r"^reviewed_by is too long: 201 characters"):
        gov.request(gov.estimate(1), reviewed_by="r" * 201)
    assert gov.request(gov.estimate(1), reviewed_by="r" * 200).reviewed_by == "r" * 200
    assert gov.snapshot().outcomes == {"admitted": 1}


def test_text_arguments_have_a_200_character_limit() -> None:
    with pytest.raises(InvalidInputError, match=r"^period is too long: 201"):
        EnergyGovernor(100, period="p" * 201)
    gov = EnergyGovernor(100, period="p" * 200)
    assert gov.snapshot().period == "p" * 200
    with pytest.raises(InvalidInputError, match=r"^period is too long: 201"):
        gov.start_period("q" * 201)
    gov.start_period("q" * 200)
    assert gov.snapshot().period == "q" * 200
    with pytest.raises(InvalidInputError, match=r"^approver is too long: 201"):
        gov.grant_approval(10, "a" * 201)
    assert isinstance(gov.grant_approval(10, "a" * 200), str)


def test_a_ledger_without_a_period_name_is_called_default() -> None:
    assert EnergyGovernor(100).snapshot().period == "default"


def test_number_arguments_accept_their_limits_and_refuse_beyond() -> None:
    assert EnergyGovernor(0.5).snapshot().budget == 0.5
    gov = EnergyGovernor(MAX_COST)
    assert gov.snapshot().budget == MAX_COST
    with pytest.raises(InvalidInputError, match=r"^period_budget must be <="):
        EnergyGovernor(MAX_COST * 2)
    with pytest.raises(InvalidInputError, match=r"^max_cost must be > 0"):
        gov.grant_approval(0, "cfo")
    with pytest.raises(InvalidInputError, match=r"^max_cost must be <="):
        gov.grant_approval(MAX_COST * 2, "cfo")
    assert isinstance(gov.grant_approval(MAX_COST, "cfo"), str)
    r = gov.request(gov.estimate(5))
    with pytest.raises(InvalidInputError, match=r"^actual_cost must be <="):
        gov.commit(r, actual_cost=MAX_COST * 2)
    assert gov.commit(r, actual_cost=0) == 0
    with pytest.raises(InvalidInputError, match=r"^max_age_s must be >= 0"):
        gov.release_stale(-1)
    with pytest.raises(InvalidInputError, match=r"^max_age_s must be <="):
        gov.release_stale(MAX_COST * 2)


def test_a_reservation_of_the_wrong_type_is_named() -> None:
    gov = EnergyGovernor(100)
    with pytest.raises(InvalidInputError) as refused:
        gov.commit(5)  # type: ignore[arg-type]
    assert str(refused.value) == "reservation must be a Reservation or id, got 5"
    with pytest.raises(InvalidInputError, match="reservation must be"):
        gov.release(None)  # type: ignore[arg-type]


# ---------------------------------------------------------------- admission at the limits
def test_a_cost_exactly_at_the_approval_threshold_needs_no_token() -> None:
    gov = EnergyGovernor(1_000_000)
    at = gov.request(gov.estimate(10_000))
    assert at.approved_by is None
    with pytest.raises(ApprovalRequiredError) as refused:
        gov.request(gov.estimate(10_000.5))
    assert str(refused.value) == (
        "cost 10000.5 exceeds approval_threshold 10000 and no valid approval token covers it"
    )
    token = gov.grant_approval(10_000.5, "cfo")
    assert gov.request(gov.estimate(10_000.5), approval_token=token).approved_by == "cfo"


def test_unreviewed_work_may_fill_exactly_the_auto_review_share() -> None:
    gov = EnergyGovernor(1000)
    gov.request(gov.estimate(850))
    with pytest.raises(ReviewRequiredError) as refused:
        gov.request(gov.estimate(1))
    assert str(refused.value) == (
        "utilisation would reach 85.1% > auto_review_threshold 85%: pass reviewed_by"
    )


def test_unreviewed_work_up_to_the_hard_limit_is_told_to_get_a_review() -> None:
    gov = EnergyGovernor(1000)
    gov.request(gov.estimate(850))
    with pytest.raises(ReviewRequiredError, match=r"would reach 95\.0%"):
        gov.request(gov.estimate(100))
    with pytest.raises(EmergencyBrakeError, match=r"would reach 95\.1%"):
        gov.request(gov.estimate(101))


def test_the_wrong_config_type_is_named() -> None:
    with pytest.raises(InvalidInputError) as refused:
        EnergyGovernor(100, config={"budget_limits": {}})  # type: ignore[arg-type]
    assert str(refused.value) == "config must be a GovernanceConfig, got dict"


def test_reviewed_work_may_fill_exactly_the_hard_limit_share() -> None:
    gov = EnergyGovernor(1000)
    gov.request(gov.estimate(950), reviewed_by="x")
    with pytest.raises(EmergencyBrakeError) as refused:
        gov.request(gov.estimate(1), reviewed_by="x")
    assert str(refused.value) == (
        "utilisation would reach 95.1% > hard_limit_percentage 95%: only emergency work is admitted"
    )
    with pytest.raises(EmergencyBrakeError):  # unreviewed: the brake is named, not the review
        gov.request(gov.estimate(1))


def test_emergency_work_may_fill_exactly_the_whole_budget() -> None:
    gov = EnergyGovernor(600, period="p")
    full = gov.request(gov.estimate(1000, emergency=True))
    assert (full.cost, full.emergency, full.period) == (600, True, "p")
    assert gov.snapshot().available == 0
    with pytest.raises(BudgetExhaustedError) as refused:
        gov.request(gov.estimate(1, emergency=True))
    assert str(refused.value) == "cost 0.6 exceeds the 0 units left in period 'p'"


def test_an_overspent_period_reports_zero_units_left() -> None:
    gov = EnergyGovernor(1000, period="p")
    r = gov.request(gov.estimate(100))
    gov.commit(r, actual_cost=1200)
    snap = gov.snapshot()
    assert (snap.available, snap.overrun, snap.utilisation) == (0, 1100, 1.2)
    with pytest.raises(BudgetExhaustedError) as refused:
        gov.request(gov.estimate(10, emergency=True))
    assert str(refused.value) == "cost 6 exceeds the 0 units left in period 'p'"


def test_with_no_brake_a_request_filling_the_budget_still_needs_review() -> None:
    config = load_governance_config(overrides={"budget_limits": {"hard_limit_percentage": 100}})
    gov = EnergyGovernor(1000, config=config)
    with pytest.raises(ReviewRequiredError):
        gov.request(gov.estimate(1000))
    assert gov.request(gov.estimate(1000), reviewed_by="x").cost == 1000


def test_the_budget_exhausted_message_names_what_is_left() -> None:
    gov = EnergyGovernor(1000, period="tue")
    gov.request(gov.estimate(900), reviewed_by="x")
    with pytest.raises(BudgetExhaustedError) as refused:
        gov.request(gov.estimate(200, emergency=True))
    assert str(refused.value) == "cost 120 exceeds the 100 units left in period 'tue'"


# ---------------------------------------------------------------- snapshot
def test_snapshot_flags_at_exact_utilisation() -> None:
    gov = EnergyGovernor(1000)
    gov.request(gov.estimate(850))
    snap = gov.snapshot()
    assert (snap.utilisation, snap.review_required, snap.brake_engaged) == (0.85, False, False)
    gov.request(gov.estimate(95), reviewed_by="x")
    snap = gov.snapshot()
    assert (snap.utilisation, snap.review_required, snap.brake_engaged) == (0.945, True, False)
    gov.request(gov.estimate(5), reviewed_by="x")
    snap = gov.snapshot()
    assert (snap.utilisation, snap.review_required, snap.brake_engaged) == (0.95, True, True)


def test_review_is_not_flagged_just_below_its_threshold() -> None:
    gov = EnergyGovernor(1000)
    gov.request(gov.estimate(845))
    snap = gov.snapshot()
    assert (snap.utilisation, snap.review_required) == (0.845, False)


def test_snapshot_rounds_to_six_decimals() -> None:
    gov = EnergyGovernor(1000)
    r = gov.request(gov.estimate(0.12345678))
    snap = gov.snapshot()
    assert (snap.reserved, snap.available, snap.utilisation) == (0.123457, 999.876543, 0.000123)
    gov.commit(r, actual_cost=0.3)
    snap = gov.snapshot()
    assert (snap.committed, snap.overrun) == (0.3, 0.176543)
    gov.commit(gov.request(gov.estimate(0.12345678)))
    assert gov.snapshot().committed == 0.423457
    assert snap.to_dict()["overrun"] == 0.176543


# ---------------------------------------------------------------- alerts, gauges, logs
def test_an_alert_records_level_period_rounded_utilisation_and_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    clock = Clock(1234.5)
    fired: list[Alert] = []
    gov = EnergyGovernor(3000, period="w1", on_alert=fired.append, clock=clock)
    gov.request(gov.estimate(2600.0000001), reviewed_by="x")
    assert fired == [Alert("auto_review", "w1", 0.866667, 1234.5)]
    logged = events(caplog, "budget_alert")
    assert len(logged) == 1
    assert logged[0] == {
        "event": "budget_alert",
        "level": "auto_review",
        "period": "w1",
        "utilisation": 0.866667,
        "at": 1234.5,
        "_level": logging.WARNING,
    }


def test_a_commit_that_crosses_a_level_fires_it() -> None:
    registry = CollectorRegistry()
    fired: list[Alert] = []
    gov = EnergyGovernor(1000, on_alert=fired.append, registry=registry)
    r = gov.request(gov.estimate(500))
    assert fired == []
    gov.commit(r, actual_cost=960)
    assert [a.level for a in fired] == ["auto_review", "emergency_brake"]
    assert gauge(registry, "fusion_budget_alert_active", level="auto_review") == 1
    assert gauge(registry, "fusion_budget_alert_active", level="emergency_brake") == 1
    assert gauge(registry, "fusion_budget_utilisation_ratio") == pytest.approx(0.96)
    assert gauge(registry, "fusion_budget_committed_units_total") == 960


def test_gauges_follow_release_and_a_new_period() -> None:
    registry = CollectorRegistry()
    gov = EnergyGovernor(1000, registry=registry)
    assert gauge(registry, "fusion_budget_utilisation_ratio") == 0
    assert gauge(registry, "fusion_budget_alert_active", level="auto_review") == 0
    assert gauge(registry, "fusion_budget_alert_active", level="emergency_brake") == 0
    r = gov.request(gov.estimate(400))
    assert gauge(registry, "fusion_budget_utilisation_ratio") == pytest.approx(0.4)
    gov.release(r)
    assert gauge(registry, "fusion_budget_utilisation_ratio") == 0
    gov.request(gov.estimate(900), reviewed_by="x")
    assert gauge(registry, "fusion_budget_utilisation_ratio") == pytest.approx(0.9)
    gov.start_period("next")
    assert gauge(registry, "fusion_budget_utilisation_ratio") == 0
    assert gauge(registry, "fusion_budget_alert_active", level="auto_review") == 0


def test_denials_are_counted_by_reason() -> None:
    registry = CollectorRegistry()
    gov = EnergyGovernor(1000, registry=registry)
    gov.request(gov.estimate(850))
    for _ in range(2):
        with pytest.raises(ReviewRequiredError):
            gov.request(gov.estimate(100))
    with pytest.raises(EmergencyBrakeError):
        gov.request(gov.estimate(101), reviewed_by="x")
    with pytest.raises(ApprovalRequiredError):
        gov.request(gov.estimate(20_000, emergency=True))

    def count(outcome: str) -> float | None:
        return gauge(registry, "fusion_budget_requests_total", outcome=outcome)

    assert (count("admitted"), count("review_required"), count("emergency_brake")) == (1, 2, 1)
    assert count("approval_required") == 1


def test_a_resumed_store_restores_the_alert_gauges_and_logs_the_ledger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    store = MemoryLedgerStore()
    first = EnergyGovernor(1000, period="p", store=store)
    first.request(first.estimate(870), reviewed_by="x")
    first.commit(first.request(first.estimate(30), reviewed_by="x"))
    registry = CollectorRegistry()
    EnergyGovernor(5, period="other", store=store, registry=registry)
    assert gauge(registry, "fusion_budget_alert_active", level="auto_review") == 1
    assert gauge(registry, "fusion_budget_alert_active", level="emergency_brake") == 0
    assert gauge(registry, "fusion_budget_utilisation_ratio") == pytest.approx(0.9)
    opened = events(caplog, "ledger_opened")
    assert opened[-1] == {
        "event": "ledger_opened",
        "period": "p",
        "budget": 1000,
        "committed": 30,
        "reserved": 870,
        "_level": logging.INFO,
    }
    assert len(opened) == 2


def test_an_in_memory_ledger_logs_no_opening(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    EnergyGovernor(1000)
    assert events(caplog, "ledger_opened") == []


def test_period_start_and_approvals_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    gov = EnergyGovernor(1_000_000, period="mon")
    gov.grant_approval(50_000, "cfo")
    gov.grant_approval(60_000, "cto")
    gov.request(gov.estimate(10))
    gov.start_period("tue", budget=2000)
    assert events(caplog, "approval_granted") == [
        {"event": "approval_granted", "approver": "cfo", "max_cost": 50_000, "_level": 20},
        {"event": "approval_granted", "approver": "cto", "max_cost": 60_000, "_level": 20},
    ]
    assert events(caplog, "period_started") == [
        {
            "event": "period_started",
            "period": "tue",
            "lapsed": 1,
            "lapsed_approvals": 2,
            "_level": logging.INFO,
        }
    ]
    assert gov.snapshot().budget == 2000
    gov.start_period("wed")
    assert gov.snapshot().budget == 2000  # no budget given: the last one carries over


def test_release_stale_releases_only_reservations_older_than_the_age(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    clock = Clock(100.0)
    gov = EnergyGovernor(1000, clock=clock)
    gov.request(gov.estimate(100))
    clock.now = 150.0
    young = gov.request(gov.estimate(200))
    clock.now = 200.0
    assert gov.release_stale(60) == 1  # created at 100 < 200 - 60; the one at 150 is not
    snap = gov.snapshot()
    assert (snap.reserved, snap.open_reservations) == (200, 1)
    assert gov.release_stale(50) == 0  # created at 150, not before 150
    assert gov.commit(young) == 200
    assert [e["released"] for e in events(caplog, "stale_reservations_released")] == [1, 0]


def test_commit_without_an_actual_cost_settles_the_reserved_cost() -> None:
    registry = CollectorRegistry()
    gov = EnergyGovernor(1000, registry=registry)
    r = gov.request(gov.estimate(123))
    assert gov.commit(r.id) == 123
    assert gauge(registry, "fusion_budget_committed_units_total") == 123
    assert gov.snapshot().overrun == 0


def test_a_shared_ledger_records_its_periods_by_the_governor_clock(tmp_path: Path) -> None:
    """A SQLite ledger records when each period started and closed: the governor's clock."""
    path = tmp_path / "ledger.db"
    clock = Clock(5.0)
    gov = EnergyGovernor(1000, period="p", clock=clock, store=open_ledger_store(path))
    clock.now = 9.0
    gov.start_period("q")
    gov.close()
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        history = db.execute("SELECT period, started_at, closed_at FROM fusion_period_history")
        assert history.fetchall() == [("p", 5.0, 9.0)]
        assert db.execute("SELECT period, started_at FROM fusion_ledger").fetchall() == [("q", 9.0)]


def test_approvals_and_alerts_on_a_shared_ledger_carry_the_clock(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    clock = Clock(5.0)
    gov = EnergyGovernor(1000, period="p", clock=clock, store=open_ledger_store(path))
    clock.now = 6.0
    gov.grant_approval(20_000, "cfo")
    r = gov.request(gov.estimate(100), reviewed_by="rev")
    clock.now = 8.0
    gov.commit(r, actual_cost=900)
    gov.close()
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        assert db.execute("SELECT approver, granted_at FROM fusion_approvals").fetchall() == [
            ("cfo", 6.0)
        ]
        alerts = db.execute("SELECT level, fired_at FROM fusion_ledger_alerts ORDER BY level")
        assert alerts.fetchall() == [("auto_review", 8.0)]


def test_a_shared_ledger_records_who_reviewed_an_open_reservation(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    gov = EnergyGovernor(1000, clock=Clock(7.0), store=open_ledger_store(path))
    gov.request(gov.estimate(100), reviewed_by="rev")
    gov.close()
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT cost, reviewed_by, created_at FROM fusion_reservations")
        assert rows.fetchall() == [(100.0, "rev", 7.0)]
