"""The energy governor: a per-period budget ledger with cost multipliers and admission rules.

Units are abstract "energy units" (tokens, cents, ...): the governor only needs them additive.

``estimate`` applies the configured multipliers and returns a per-factor breakdown. ``request``
reserves an estimate or refuses it with a typed :class:`~fusion_ops.errors.BudgetDeniedError`;
``commit`` settles a reservation at its actual cost, ``release`` returns it unused.

Admission rules, checked in this order, with *utilisation* = (committed + reserved) / budget:

1. a single request above ``approval_threshold`` needs an approval token from
   :meth:`EnergyGovernor.grant_approval` (single use, covers up to its amount);
2. a request that would push utilisation above ``hard_limit_percentage`` is refused unless it is
   emergency work: the emergency brake keeps the last slice of the budget for emergencies;
3. no request, emergency or not, may take reservations past 100% of the budget;
4. a request that would push utilisation above ``auto_review_threshold`` needs ``reviewed_by``
   (emergency work is exempt).

Each alert level (``auto_review``, ``emergency_brake``) fires once per period, when utilisation
first crosses it. The ledger lives in a :class:`~fusion_ops.ledger_store.LedgerStore`: in memory
by default, or in SQLite / PostgreSQL (:func:`~fusion_ops.ledger_store.open_ledger_store`), where
it survives restarts and is shared by several processes; each admission, commit and release is
one atomic store operation, and callbacks run after it.
Actual costs above the reservation are recorded as overrun (they were spent) and count towards
utilisation, so the guarantee is: admitted reservations never exceed the budget.

Every number is checked where it enters: a :class:`CostEstimate` validates itself when it is made
(finite, within [0, MAX_COST], cost = base cost × the applied multipliers), ``request`` checks it
again against this governor's multipliers (a forged or mutated estimate is refused with
:class:`~fusion_ops.errors.InvalidInputError`, counted as ``invalid_estimate``), and budgets,
actual costs and the configuration (see :mod:`fusion_ops.config`) are validated the same way. A NaN
or negative cost can therefore never admit spend or raise the available budget. A new period
clears the open reservations and every unused approval token.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from fusion_ops import _validate
from fusion_ops.config import MAX_UNITS, GovernanceConfig, load_governance_config
from fusion_ops.errors import (
    ApprovalRequiredError,
    BudgetDeniedError,
    BudgetExhaustedError,
    EmergencyBrakeError,
    InvalidInputError,
    ReviewRequiredError,
)
from fusion_ops.ledger_store import Admission, LedgerStore, MemoryLedgerStore, Totals
from fusion_ops.logs import log_event
from fusion_ops.metrics import GovernorMetrics

__all__ = [
    "Alert",
    "CostEstimate",
    "EnergyGovernor",
    "LedgerSnapshot",
    "MultiplierApplied",
    "Reservation",
]

log = logging.getLogger("fusion_ops.governance")
MAX_COST = MAX_UNITS
_REL_TOL = 1e-9
ALERT_LEVELS = ("auto_review", "emergency_brake")


@dataclass(frozen=True)
class MultiplierApplied:
    factor: str
    applied: bool
    multiplier: float
    reason: str


@dataclass(frozen=True)
class CostEstimate:
    base_cost: float
    cost: float
    multiplier: float
    emergency: bool
    breakdown: tuple[MultiplierApplied, ...]

    def __post_init__(self) -> None:
        _check_estimate(self)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_estimate(estimate: CostEstimate) -> float:
    """The estimate's cost, after checking every field and that cost = base × multipliers."""
    base = _validate.finite_number(
        "estimate.base_cost", estimate.base_cost, minimum=0, maximum=MAX_COST
    )
    cost = _validate.finite_number("estimate.cost", estimate.cost, minimum=0, maximum=MAX_COST)
    multiplier = _validate.finite_number(
        "estimate.multiplier", estimate.multiplier, minimum=0, exclusive_minimum=True
    )
    if not isinstance(estimate.emergency, bool):
        raise InvalidInputError(
            f"estimate.emergency must be a bool, got {_validate.show(estimate.emergency)}"
        )
    if not isinstance(estimate.breakdown, tuple) or not all(
        isinstance(item, MultiplierApplied) for item in estimate.breakdown
    ):
        raise InvalidInputError("estimate.breakdown must be a tuple of MultiplierApplied")
    product = 1.0
    for item in estimate.breakdown:
        _validate.text("estimate.breakdown factor", item.factor, max_chars=100)
        factor = _validate.finite_number(
            f"estimate.breakdown[{_validate.show(item.factor)}].multiplier",
            item.multiplier,
            minimum=0,
            exclusive_minimum=True,
        )
        if not isinstance(item.applied, bool):
            raise InvalidInputError(
                f"estimate.breakdown[{_validate.show(item.factor)}].applied must be a bool"
            )
        if item.applied:
            product *= factor
    if not math.isclose(multiplier, product, rel_tol=_REL_TOL):
        raise InvalidInputError(
            f"estimate.multiplier {multiplier:g} is not the product {product:g} of the applied factors"
        )
    if not math.isclose(cost, base * multiplier, rel_tol=_REL_TOL, abs_tol=1e-12):
        raise InvalidInputError(
            f"estimate.cost {cost:g} is not base_cost {base:g} x multiplier {multiplier:g}"
        )
    return cost


@dataclass(frozen=True)
class Reservation:
    id: str
    period: str
    cost: float
    emergency: bool
    reviewed_by: str | None
    approved_by: str | None


@dataclass(frozen=True)
class Alert:
    level: str
    period: str
    utilisation: float
    at: float


@dataclass(frozen=True)
class LedgerSnapshot:
    period: str
    budget: float
    committed: float
    reserved: float
    available: float
    utilisation: float
    overrun: float
    brake_engaged: bool
    review_required: bool
    open_reservations: int
    alerts_fired: tuple[str, ...]
    outcomes: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class EnergyGovernor:
    """Budget ledger for one period at a time. Thread-safe; with a shared ``store``, also safe
    across processes (see :mod:`fusion_ops.ledger_store`)."""

    def __init__(
        self,
        period_budget: float,
        *,
        config: GovernanceConfig | None = None,
        period: str = "default",
        registry: CollectorRegistry | None = None,
        on_alert: Callable[[Alert], None] | None = None,
        clock: Callable[[], float] = time.time,
        store: LedgerStore | None = None,
    ) -> None:
        """Without ``store`` the ledger lives in memory. A store that already holds a ledger is
        resumed as it is (its period, budget, spend, reservations and approval tokens):
        ``period_budget`` and ``period`` only seed an empty store; change them with
        :meth:`start_period`."""
        self.config = config or load_governance_config()
        if not isinstance(self.config, GovernanceConfig):
            raise InvalidInputError(
                f"config must be a GovernanceConfig, got {type(self.config).__name__}"
            )
        name = _validate.text("period", period, max_chars=200)
        amount = _checked_budget(period_budget)
        self._metrics = GovernorMetrics(registry) if registry is not None else None
        self._on_alert = on_alert
        self._clock = clock
        self._store: LedgerStore = MemoryLedgerStore() if store is None else store
        totals = self._store.open(name, amount, clock())
        if store is not None:
            log_event(
                log,
                logging.INFO,
                "ledger_opened",
                period=totals.period,
                budget=totals.budget,
                committed=totals.committed,
                reserved=totals.reserved,
            )
        if self._metrics is not None:
            fired = self._store.state().alerts_fired
            for level in ALERT_LEVELS:
                self._metrics.alerts.labels(level=level).set(1 if level in fired else 0)
        self._update_gauge(totals)

    # ------------------------------------------------------------------ periods
    def start_period(self, period: str, budget: float | None = None) -> None:
        """Close the current period (open reservations and approval tokens lapse) and start a
        fresh ledger."""
        name = _validate.text("period", period, max_chars=200)
        amount = None if budget is None else _checked_budget(budget)
        lapsed, tokens = self._store.start_period(name, amount, self._clock())
        if self._metrics is not None:
            for level in ALERT_LEVELS:
                self._metrics.alerts.labels(level=level).set(0)
            self._metrics.utilisation.set(0)
        log_event(
            log,
            logging.INFO,
            "period_started",
            period=name,
            lapsed=lapsed,
            lapsed_approvals=tokens,
        )

    # ------------------------------------------------------------------ estimate
    def estimate(
        self,
        base_cost: float,
        *,
        complexity: float = 0.0,
        trust_score: float = 1.0,
        entropy: float = 0.0,
        emergency: bool = False,
    ) -> CostEstimate:
        """Apply the multipliers to ``base_cost``; the breakdown lists every factor."""
        base = _validate.finite_number("base_cost", base_cost, minimum=0, maximum=MAX_COST)
        cx = _validate.finite_number("complexity", complexity, minimum=0, maximum=1)
        trust = _validate.finite_number("trust_score", trust_score, minimum=0, maximum=1)
        ent = _validate.finite_number("entropy", entropy, minimum=0, maximum=1)
        if not isinstance(emergency, bool):
            raise InvalidInputError(f"emergency must be a bool, got {_validate.show(emergency)}")
        m, t = self.config.multipliers, self.config.thresholds
        breakdown = (
            MultiplierApplied(
                "high_complexity",
                cx > t.complexity,
                m.high_complexity,
                f"complexity {cx:.2f} {'>' if cx > t.complexity else '<='} {t.complexity}",
            ),
            MultiplierApplied(
                "low_trust",
                trust < t.trust_floor,
                m.low_trust,
                f"trust {trust:.2f} {'<' if trust < t.trust_floor else '>='} floor {t.trust_floor}",
            ),
            MultiplierApplied(
                "high_entropy",
                ent > t.entropy,
                m.high_entropy,
                f"entropy {ent:.2f} {'>' if ent > t.entropy else '<='} {t.entropy}",
            ),
            MultiplierApplied(
                "emergency_discount",
                emergency,
                m.emergency_discount,
                "emergency mode" if emergency else "normal mode",
            ),
        )
        multiplier = 1.0
        for item in breakdown:
            if item.applied:
                multiplier *= item.multiplier
        cost = base * multiplier
        if cost > MAX_COST:
            raise InvalidInputError(f"estimated cost {cost:g} exceeds the limit {MAX_COST:g}")
        return CostEstimate(base, cost, multiplier, emergency, breakdown)

    # ------------------------------------------------------------------ approvals
    def grant_approval(self, max_cost: float, approver: str) -> str:
        """A single-use token admitting one request of up to ``max_cost`` above the threshold."""
        amount = _validate.finite_number(
            "max_cost", max_cost, minimum=0, maximum=MAX_COST, exclusive_minimum=True
        )
        who = _validate.text("approver", approver, max_chars=200)
        token = secrets.token_urlsafe(24)
        self._store.grant(_digest(token), amount, who, self._clock())
        log_event(log, logging.INFO, "approval_granted", approver=who, max_cost=amount)
        return token

    # ------------------------------------------------------------------ request / settle
    def request(
        self,
        estimate: CostEstimate,
        *,
        reviewed_by: str | None = None,
        approval_token: str | None = None,
    ) -> Reservation:
        """Reserve ``estimate.cost`` or raise a :class:`BudgetDeniedError` subclass."""
        if not isinstance(estimate, CostEstimate):
            raise InvalidInputError(
                f"estimate must be a CostEstimate from estimate(), got {type(estimate).__name__}"
            )
        if reviewed_by is not None:
            _validate.text("reviewed_by", reviewed_by, max_chars=200)
        if approval_token is not None and not isinstance(approval_token, str):
            raise InvalidInputError("approval_token must be a string")
        limits = self.config.budget_limits
        try:
            cost = self._checked_cost(estimate)
        except InvalidInputError:
            self._count("invalid_estimate")
            raise
        needs_approval = cost > limits.approval_threshold
        fractions = [1.0]
        if not estimate.emergency:
            fractions.append(limits.hard_limit_percentage / 100)
            if reviewed_by is None:
                fractions.append(limits.auto_review_threshold / 100)
        result = self._store.admit(
            Admission(
                cost=cost,
                emergency=estimate.emergency,
                reviewed_by=reviewed_by,
                approval_digest=_digest(approval_token or "") if needs_approval else None,
                limit_fraction=min(fractions),
                alert_levels=self._alert_levels(),
                now=self._clock(),
            ),
            lambda totals: self._classify(totals, cost, estimate.emergency, reviewed_by),
        )
        if result.denied is not None:
            reason, message = result.denied
            if self._metrics is not None:
                self._metrics.requests.labels(outcome=reason).inc()
            if reason == "approval_required":
                raise ApprovalRequiredError(
                    f"cost {cost:g} exceeds approval_threshold "
                    f"{limits.approval_threshold:g} and no valid approval token covers it"
                )
            raise _DENIALS[reason](message)
        assert result.reservation_id is not None
        if self._metrics is not None:
            self._metrics.requests.labels(outcome="admitted").inc()
        try:
            self._after_change(result.totals, result.fired)
        except BaseException:
            # an on_alert callback failed: the caller never gets the reservation, so it is
            # returned here instead of holding budget until release_stale
            self.release(result.reservation_id)
            raise
        return Reservation(
            result.reservation_id,
            result.totals.period,
            cost,
            estimate.emergency,
            reviewed_by,
            result.approver,
        )

    def commit(self, reservation: Reservation | str, actual_cost: float | None = None) -> float:
        """Settle a reservation at ``actual_cost`` (default: the reserved cost); return it."""
        checked = (
            None
            if actual_cost is None
            else _validate.finite_number("actual_cost", actual_cost, minimum=0, maximum=MAX_COST)
        )
        settled = self._store.settle(
            _reservation_id(reservation), checked, self._alert_levels(), self._clock()
        )
        if self._metrics is not None:
            self._metrics.committed_units.inc(settled.actual)
        self._after_change(settled.totals, settled.fired)
        return settled.actual

    def release(self, reservation: Reservation | str) -> None:
        """Return a reservation unused."""
        self._update_gauge(self._store.release(_reservation_id(reservation)))

    def release_stale(self, max_age_s: float) -> int:
        """Release every open reservation older than ``max_age_s`` seconds (for reservations a
        crashed process left behind); returns how many were released."""
        age = _validate.finite_number("max_age_s", max_age_s, minimum=0, maximum=MAX_COST)
        released = self._store.release_stale(self._clock() - age)
        log_event(log, logging.INFO, "stale_reservations_released", released=released)
        return released

    def close(self) -> None:
        """Close the store's connection (a no-op in memory)."""
        self._store.close()

    # ------------------------------------------------------------------ reading
    def snapshot(self) -> LedgerSnapshot:
        state = self._store.state()
        used = state.committed + state.reserved
        util = used / state.budget
        limits = self.config.budget_limits
        return LedgerSnapshot(
            period=state.period,
            budget=state.budget,
            committed=round(state.committed, 6),
            reserved=round(state.reserved, 6),
            available=round(max(0.0, state.budget - used), 6),
            utilisation=round(util, 6),
            overrun=round(state.overrun, 6),
            brake_engaged=util * 100 >= limits.hard_limit_percentage,
            review_required=util * 100 > limits.auto_review_threshold,
            open_reservations=state.open_reservations,
            alerts_fired=state.alerts_fired,
            outcomes=state.outcomes,
        )

    # ------------------------------------------------------------------ internals
    def _checked_cost(self, estimate: CostEstimate) -> float:
        """Re-check an estimate (it may have been forged or mutated since it was made) and
        require this governor's multipliers, so no caller can invent its own discount."""
        cost = _check_estimate(estimate)
        configured = asdict(self.config.multipliers)
        factors = {item.factor: item for item in estimate.breakdown}
        if set(factors) != set(configured) or len(factors) != len(estimate.breakdown):
            raise InvalidInputError(
                f"estimate.breakdown must list the factors {sorted(configured)} once each"
            )
        for name, value in configured.items():
            if not math.isclose(factors[name].multiplier, value, rel_tol=_REL_TOL):
                raise InvalidInputError(
                    f"estimate.breakdown[{name!r}].multiplier {factors[name].multiplier:g} is not "
                    f"this governor's {value:g}: make estimates with estimate()"
                )
        if factors["emergency_discount"].applied is not estimate.emergency:
            raise InvalidInputError(
                "estimate.emergency must match whether the emergency discount was applied"
            )
        return cost

    def _classify(
        self, totals: Totals, cost: float, emergency: bool, reviewed_by: str | None
    ) -> tuple[str, str]:
        """Why a request that did not fit was refused, in the order of the module docstring."""
        limits = self.config.budget_limits
        used = totals.committed + totals.reserved + cost
        after = used / totals.budget * 100
        if not emergency and used > totals.budget * (limits.hard_limit_percentage / 100):
            return "emergency_brake", (
                f"utilisation would reach {after:.1f}% > hard_limit_percentage "
                f"{limits.hard_limit_percentage:g}%: only emergency work is admitted"
            )
        if (
            not emergency
            and reviewed_by is None
            and totals.budget * (limits.auto_review_threshold / 100) < used <= totals.budget
        ):
            return "review_required", (
                f"utilisation would reach {after:.1f}% > auto_review_threshold "
                f"{limits.auto_review_threshold:g}%: pass reviewed_by"
            )
        left = max(0.0, totals.budget - totals.committed - totals.reserved)
        return "budget_exhausted", (
            f"cost {cost:g} exceeds the {left:g} units left in period {totals.period!r}"
        )

    def _alert_levels(self) -> tuple[tuple[str, float], ...]:
        limits = self.config.budget_limits
        return (
            ("auto_review", limits.auto_review_threshold),
            ("emergency_brake", limits.hard_limit_percentage),
        )

    def _count(self, outcome: str) -> None:
        self._store.count(outcome)
        if self._metrics is not None:
            self._metrics.requests.labels(outcome=outcome).inc()

    def _update_gauge(self, totals: Totals) -> None:
        if self._metrics is not None:
            self._metrics.utilisation.set((totals.committed + totals.reserved) / totals.budget)

    def _after_change(self, totals: Totals, fired: tuple[str, ...]) -> None:
        """Update the gauges, then log and call back for each alert level this change fired."""
        self._update_gauge(totals)
        util = round((totals.committed + totals.reserved) / totals.budget, 6)
        for level in fired:
            if self._metrics is not None:
                self._metrics.alerts.labels(level=level).set(1)
            alert = Alert(level, totals.period, util, self._clock())
            log_event(log, logging.WARNING, "budget_alert", **asdict(alert))
            if self._on_alert is not None:
                self._on_alert(alert)


_DENIALS: dict[str, type[BudgetDeniedError]] = {
    "emergency_brake": EmergencyBrakeError,
    "budget_exhausted": BudgetExhaustedError,
    "review_required": ReviewRequiredError,
}


def _checked_budget(budget: float) -> float:
    return _validate.finite_number(
        "period_budget", budget, minimum=0, maximum=MAX_COST, exclusive_minimum=True
    )


def _reservation_id(reservation: Reservation | str) -> str:
    rid = reservation.id if isinstance(reservation, Reservation) else reservation
    if not isinstance(rid, str):
        raise InvalidInputError(
            f"reservation must be a Reservation or id, got {_validate.show(rid)}"
        )
    return rid


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
