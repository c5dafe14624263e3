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
first crosses it. All state sits behind one lock; callbacks run after the lock is released.
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
import itertools
import logging
import math
import secrets
import threading
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
    ReservationError,
    ReviewRequiredError,
)
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


@dataclass
class _Approval:
    max_cost: float
    approver: str


class EnergyGovernor:
    """Budget ledger for one period at a time. Thread-safe."""

    def __init__(
        self,
        period_budget: float,
        *,
        config: GovernanceConfig | None = None,
        period: str = "default",
        registry: CollectorRegistry | None = None,
        on_alert: Callable[[Alert], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config or load_governance_config()
        if not isinstance(self.config, GovernanceConfig):
            raise InvalidInputError(
                f"config must be a GovernanceConfig, got {type(self.config).__name__}"
            )
        self._metrics = GovernorMetrics(registry) if registry is not None else None
        self._on_alert = on_alert
        self._clock = clock
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._approvals: dict[str, _Approval] = {}
        self._open_period(period, period_budget)

    # ------------------------------------------------------------------ periods
    def _open_period(self, period: str, budget: float) -> None:
        """Validate both arguments before touching the ledger, then reset it (tokens included)."""
        name = _validate.text("period", period, max_chars=200)
        amount = _validate.finite_number(
            "period_budget", budget, minimum=0, maximum=MAX_COST, exclusive_minimum=True
        )
        self._period, self._budget = name, amount
        self._approvals.clear()
        self._committed = 0.0
        self._reserved = 0.0
        self._overrun = 0.0
        self._open: dict[str, Reservation] = {}
        self._fired: list[str] = []
        self._outcomes: dict[str, int] = {}
        if self._metrics is not None:
            for level in ALERT_LEVELS:
                self._metrics.alerts.labels(level=level).set(0)
            self._metrics.utilisation.set(0)

    def start_period(self, period: str, budget: float | None = None) -> None:
        """Close the current period (open reservations and approval tokens lapse) and start a
        fresh ledger."""
        with self._lock:
            lapsed, tokens = len(self._open), len(self._approvals)
            self._open_period(period, self._budget if budget is None else budget)
        log_event(
            log,
            logging.INFO,
            "period_started",
            period=period,
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
        with self._lock:
            self._approvals[_digest(token)] = _Approval(amount, who)
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
            with self._lock:
                self._count("invalid_estimate")
            raise
        fired: list[Alert] = []
        with self._lock:
            try:
                approver = None
                if cost > limits.approval_threshold:
                    approval = self._approvals.get(_digest(approval_token or ""))
                    if approval is None or approval.max_cost < cost:
                        raise ApprovalRequiredError(
                            f"cost {cost:g} exceeds approval_threshold "
                            f"{limits.approval_threshold:g} and no valid approval token covers it"
                        )
                    approver = approval.approver
                after = (self._committed + self._reserved + cost) / self._budget * 100
                if after > limits.hard_limit_percentage and not estimate.emergency:
                    raise EmergencyBrakeError(
                        f"utilisation would reach {after:.1f}% > hard_limit_percentage "
                        f"{limits.hard_limit_percentage:g}%: only emergency work is admitted"
                    )
                if self._committed + self._reserved + cost > self._budget:
                    raise BudgetExhaustedError(
                        f"cost {cost:g} exceeds the {self._available():g} units left in period "
                        f"{self._period!r}"
                    )
                if (
                    after > limits.auto_review_threshold
                    and not estimate.emergency
                    and reviewed_by is None
                ):
                    raise ReviewRequiredError(
                        f"utilisation would reach {after:.1f}% > auto_review_threshold "
                        f"{limits.auto_review_threshold:g}%: pass reviewed_by"
                    )
            except BudgetDeniedError as denied:
                self._count(denied.reason)
                raise
            if approver is not None:
                del self._approvals[_digest(approval_token or "")]
            reservation = Reservation(
                f"{self._period}:{next(self._ids)}",
                self._period,
                cost,
                estimate.emergency,
                reviewed_by,
                approver,
            )
            self._open[reservation.id] = reservation
            self._reserved += cost
            self._count("admitted")
            fired = self._check_alerts()
        self._dispatch(fired)
        return reservation

    def commit(self, reservation: Reservation | str, actual_cost: float | None = None) -> float:
        """Settle a reservation at ``actual_cost`` (default: the reserved cost); return it."""
        fired: list[Alert] = []
        checked = (
            None
            if actual_cost is None
            else _validate.finite_number("actual_cost", actual_cost, minimum=0, maximum=MAX_COST)
        )
        with self._lock:
            held = self._take(reservation)
            actual = held.cost if checked is None else checked
            self._reserved -= held.cost
            self._committed += actual
            self._overrun += max(0.0, actual - held.cost)
            if self._metrics is not None:
                self._metrics.committed_units.inc(actual)
            fired = self._check_alerts()
        self._dispatch(fired)
        return actual

    def release(self, reservation: Reservation | str) -> None:
        """Return a reservation unused."""
        with self._lock:
            held = self._take(reservation)
            self._reserved -= held.cost
            self._update_gauge()

    # ------------------------------------------------------------------ reading
    def snapshot(self) -> LedgerSnapshot:
        with self._lock:
            used = self._committed + self._reserved
            util = used / self._budget
            limits = self.config.budget_limits
            return LedgerSnapshot(
                period=self._period,
                budget=self._budget,
                committed=round(self._committed, 6),
                reserved=round(self._reserved, 6),
                available=round(self._available(), 6),
                utilisation=round(util, 6),
                overrun=round(self._overrun, 6),
                brake_engaged=util * 100 >= limits.hard_limit_percentage,
                review_required=util * 100 > limits.auto_review_threshold,
                open_reservations=len(self._open),
                alerts_fired=tuple(self._fired),
                outcomes=dict(self._outcomes),
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

    def _available(self) -> float:
        return max(0.0, self._budget - self._committed - self._reserved)

    def _take(self, reservation: Reservation | str) -> Reservation:
        rid = reservation.id if isinstance(reservation, Reservation) else reservation
        if not isinstance(rid, str):
            raise InvalidInputError(
                f"reservation must be a Reservation or id, got {_validate.show(rid)}"
            )
        held = self._open.pop(rid, None)
        if held is None:
            raise ReservationError(
                f"reservation {_validate.show(rid)} is unknown, already settled or from a closed period"
            )
        return held

    def _count(self, outcome: str) -> None:
        self._outcomes[outcome] = self._outcomes.get(outcome, 0) + 1
        if self._metrics is not None:
            self._metrics.requests.labels(outcome=outcome).inc()

    def _update_gauge(self) -> None:
        if self._metrics is not None:
            self._metrics.utilisation.set((self._committed + self._reserved) / self._budget)

    def _check_alerts(self) -> list[Alert]:
        self._update_gauge()
        util = (self._committed + self._reserved) / self._budget * 100
        limits = self.config.budget_limits
        crossed = []
        for level, threshold in (
            ("auto_review", limits.auto_review_threshold),
            ("emergency_brake", limits.hard_limit_percentage),
        ):
            if util >= threshold and level not in self._fired:
                self._fired.append(level)
                crossed.append(Alert(level, self._period, round(util / 100, 6), self._clock()))
                if self._metrics is not None:
                    self._metrics.alerts.labels(level=level).set(1)
        return crossed

    def _dispatch(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            log_event(log, logging.WARNING, "budget_alert", **asdict(alert))
            if self._on_alert is not None:
                self._on_alert(alert)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
