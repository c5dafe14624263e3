"""Model prices and the cost ledger.

Prices live in a YAML table (``data/prices.yaml`` shipped with the package, overridable). Money is
:class:`decimal.Decimal` throughout. A model missing from the table raises
:class:`~cert.coordination.errors.UnknownModelError`; a model declared ``unpriced: true`` is tracked
as unpriced (counted, never added as $0). Ids resolve in this order: the model's own entry, an
``aliases`` entry, then a dated snapshot id ``<model>-YYYYMMDD`` as ``<model>`` (or its alias).

The shipped table cites its sources and the dates they were read in its header: Anthropic's
pricing page, https://platform.claude.com/docs/en/about-claude/pricing (formerly
docs.anthropic.com/en/docs/about-claude/pricing), read 2026-12-07.

The :class:`CostLedger` enforces a rolling-hour cap *before* each request: it reserves the request's
worst case (prompt upper bound x input price + ``max_tokens`` x output price) next to what was
spent in the last hour and what other in-flight requests reserved. A request that does not fit is
refused, so the cap can only be exceeded if a request's real prompt is larger than its upper bound.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from cert.coordination.backend import TokenUsage
from cert.coordination.errors import CostCapExceededError, PriceTableError, UnknownModelError

MILLION = Decimal(1_000_000)
HOUR_S = 3600.0
_RATE_FIELDS = ("input", "output", "cache_write", "cache_read")


@dataclass(frozen=True)
class Rates:
    """USD per million tokens for each kind of token."""

    input: Decimal
    output: Decimal
    cache_write: Decimal
    cache_read: Decimal

    def cost(self, usage: TokenUsage) -> Decimal:
        total = (
            self.input * usage.input_tokens
            + self.output * usage.output_tokens
            + self.cache_write * usage.cache_creation_input_tokens
            + self.cache_read * usage.cache_read_input_tokens
        )
        return total / MILLION


@dataclass(frozen=True)
class ModelPrice:
    """Base rates of a model plus optional long-prompt tiers (sorted by threshold)."""

    model: str
    base: Rates | None
    tiers: tuple[tuple[int, Rates], ...] = ()

    @property
    def unpriced(self) -> bool:
        return self.base is None

    def rates_for(self, prompt_tokens: int) -> Rates:
        if self.base is None:
            raise UnknownModelError(f"model {self.model!r} is declared unpriced")
        rates = self.base
        for threshold, tier in self.tiers:
            if prompt_tokens > threshold:
                rates = tier
        return rates


_DATED = re.compile(r"(?P<model>.+)-(?P<date>20\d{6})")


def _undated(model: str) -> str | None:
    """``claude-sonnet-4-20250514`` -> ``claude-sonnet-4``: a snapshot is priced as its model."""
    match = _DATED.fullmatch(model)
    return match.group("model") if match else None


def _decimal(path: str, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise PriceTableError(f"{path} must be a number, got {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise PriceTableError(f"{path} must be a number, got {value!r}") from exc
    if not number.is_finite() or number < 0:
        raise PriceTableError(f"{path} must be a finite non-negative price, got {value!r}")
    return number


def _rates(path: str, entry: Mapping[str, Any]) -> Rates:
    missing = [name for name in _RATE_FIELDS if name not in entry]
    if missing:
        raise PriceTableError(f"{path} lacks {', '.join(missing)}")
    values = {name: _decimal(f"{path}.{name}", entry[name]) for name in _RATE_FIELDS}
    return Rates(**values)


class PriceTable:
    """Prices per model, loaded from YAML and validated (errors name the key path)."""

    def __init__(
        self,
        prices: Mapping[str, ModelPrice],
        *,
        as_of: str,
        currency: str = "USD",
        aliases: Mapping[str, str] | None = None,
    ):
        self._prices = dict(prices)
        self._aliases = dict(aliases or {})
        for alias, target in self._aliases.items():
            if target not in self._prices:
                raise PriceTableError(
                    f"aliases.{alias} points to {target!r}, which is not in models"
                )
        self.as_of = as_of
        self.currency = currency

    @classmethod
    def default(cls) -> PriceTable:
        """The table shipped with the package (see its header for the date and sources)."""
        text = resources.files("cert.coordination").joinpath("data/prices.yaml").read_text("utf-8")
        return cls.from_mapping(yaml.safe_load(text), source="<package prices.yaml>")

    @classmethod
    def from_yaml(cls, path: str | Path) -> PriceTable:
        """Load a price table file (same schema as the shipped one)."""
        try:
            document = yaml.safe_load(Path(path).read_text("utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise PriceTableError(f"cannot read price table {str(path)!r}: {exc}") from exc
        return cls.from_mapping(document, source=str(path))

    @classmethod
    def from_mapping(cls, document: Any, *, source: str = "<mapping>") -> PriceTable:
        if not isinstance(document, Mapping):
            raise PriceTableError(f"{source}: the top level must be a mapping")
        models = document.get("models")
        if not isinstance(models, Mapping) or not models:
            raise PriceTableError(f"{source}: 'models' must be a non-empty mapping")
        prices: dict[str, ModelPrice] = {}
        for name, entry in models.items():
            path = f"models.{name}"
            if not isinstance(name, str) or not name.strip():
                raise PriceTableError(f"{source}: model names must be strings, got {name!r}")
            if not isinstance(entry, Mapping):
                raise PriceTableError(f"{source}: {path} must be a mapping")
            if entry.get("unpriced") is True:
                prices[name] = ModelPrice(name, None)
                continue
            tiers_raw = entry.get("tiers", [])
            if not isinstance(tiers_raw, list):
                raise PriceTableError(f"{source}: {path}.tiers must be a list")
            tiers = []
            for i, tier in enumerate(tiers_raw):
                tier_path = f"{path}.tiers[{i}]"
                if not isinstance(tier, Mapping):
                    raise PriceTableError(f"{source}: {tier_path} must be a mapping")
                threshold = tier.get("above_prompt_tokens")
                if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
                    raise PriceTableError(
                        f"{source}: {tier_path}.above_prompt_tokens must be a non-negative "
                        f"integer, got {threshold!r}"
                    )
                tiers.append((threshold, _rates(f"{source}: {tier_path}", tier)))
            base = _rates(f"{source}: {path}", entry)
            prices[name] = ModelPrice(name, base, tuple(sorted(tiers, key=lambda t: t[0])))
        currency = document.get("currency", "USD")
        aliases = document.get("aliases", {})
        if not isinstance(aliases, Mapping):
            raise PriceTableError(f"{source}: 'aliases' must be a mapping of id to model")
        for alias, target in aliases.items():
            if not isinstance(alias, str) or not isinstance(target, str):
                raise PriceTableError(
                    f"{source}: aliases.{alias} must map a string id to a model name, "
                    f"got {target!r}"
                )
            if alias in prices:
                raise PriceTableError(f"{source}: aliases.{alias} is also a model entry")
        return cls(
            prices,
            as_of=str(document.get("as_of", "unknown")),
            currency=str(currency),
            aliases=aliases,
        )

    @property
    def models(self) -> list[str]:
        return sorted(self._prices)

    @property
    def aliases(self) -> dict[str, str]:
        return dict(self._aliases)

    def resolve(self, model: str) -> str | None:
        """The table entry that prices ``model`` (alias or dated snapshot resolved), or None."""
        for candidate in (model, _undated(model)):
            if candidate is None:
                continue
            if candidate in self._prices:
                return candidate
            if candidate in self._aliases:
                return self._aliases[candidate]
        return None

    def price(self, model: str) -> ModelPrice:
        entry = self.resolve(model) if isinstance(model, str) else None
        if entry is not None:
            return self._prices[entry]
        raise UnknownModelError(
            f"model {model!r} has no price in the table (as of {self.as_of}); add it to a "
            "price table YAML or declare it 'unpriced: true'",
            context={"model": model},
        )

    def cost(self, model: str, usage: TokenUsage) -> Decimal | None:
        """Cost of one request in the table's currency; None for a declared-unpriced model."""
        price = self.price(model)
        if price.unpriced:
            return None
        return price.rates_for(usage.prompt_tokens).cost(usage)

    def worst_case(self, model: str, *, prompt_tokens: int, max_tokens: int) -> Decimal | None:
        """Largest cost a request can have, given an upper bound of its prompt tokens."""
        return self.cost(model, TokenUsage(input_tokens=prompt_tokens, output_tokens=max_tokens))


@dataclass
class Reservation:
    """Worst-case cost held for one in-flight request until it is settled or released."""

    id: int
    agent: str
    model: str
    amount: Decimal


@dataclass
class CostSummary:
    """Totals of the ledger (Decimal, table currency)."""

    total: Decimal
    last_hour: Decimal
    by_agent: dict[str, Decimal]
    by_model: dict[str, Decimal]
    unpriced_calls: dict[str, int] = field(default_factory=dict)
    reserved: Decimal = Decimal(0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": str(self.total),
            "last_hour": str(self.last_hour),
            "by_agent": {k: str(v) for k, v in self.by_agent.items()},
            "by_model": {k: str(v) for k, v in self.by_model.items()},
            "unpriced_calls": dict(self.unpriced_calls),
            "reserved": str(self.reserved),
        }


class CostLedger:
    """Thread-safe cost totals per agent, per model and per rolling hour, with a pre-request cap."""

    def __init__(
        self,
        prices: PriceTable,
        *,
        max_cost_per_hour: Decimal | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.prices = prices
        self.max_cost_per_hour = max_cost_per_hour
        self._clock = clock
        self._lock = threading.Lock()
        self._window: deque[tuple[float, Decimal]] = deque()
        self._by_agent: dict[str, Decimal] = defaultdict(Decimal)
        self._by_model: dict[str, Decimal] = defaultdict(Decimal)
        self._unpriced: dict[str, int] = defaultdict(int)
        self._total = Decimal(0)
        self._reserved: dict[int, Reservation] = {}
        self._ids = itertools.count(1)

    def _spent_last_hour(self, now: float) -> Decimal:
        while self._window and now - self._window[0][0] >= HOUR_S:
            self._window.popleft()
        return sum((cost for _, cost in self._window), Decimal(0))

    def reserve(
        self, *, agent: str, model: str, prompt_tokens: int, max_tokens: int
    ) -> Reservation:
        """Hold the request's worst case; raise CostCapExceededError if it cannot fit."""
        worst = self.prices.worst_case(model, prompt_tokens=prompt_tokens, max_tokens=max_tokens)
        with self._lock:
            if worst is None:
                if self.max_cost_per_hour is not None:
                    raise UnknownModelError(
                        f"model {model!r} is unpriced, so the hourly cap of "
                        f"{self.max_cost_per_hour} cannot be enforced for it",
                        context={"model": model},
                    )
                worst = Decimal(0)
            if self.max_cost_per_hour is not None:
                spent = self._spent_last_hour(self._clock())
                held = sum((r.amount for r in self._reserved.values()), Decimal(0))
                if spent + held + worst > self.max_cost_per_hour:
                    wait = self._seconds_until_fits(worst + held)
                    raise CostCapExceededError(
                        f"request for agent {agent!r} on {model!r} may cost up to {worst:.6f}; "
                        "with "
                        f"{spent:.6f} spent in the last hour and {held:.6f} reserved it would "
                        f"exceed max_cost_per_hour={self.max_cost_per_hour}",
                        retry_after=wait,
                        context={"agent": agent, "model": model, "worst_case": str(worst)},
                    )
            reservation = Reservation(next(self._ids), agent, model, worst)
            self._reserved[reservation.id] = reservation
            return reservation

    def _seconds_until_fits(self, needed: Decimal) -> float | None:
        """Seconds until enough spending leaves the window (None if it never fits)."""
        cap = self.max_cost_per_hour
        if cap is None or needed > cap:
            return None
        now = self._clock()
        remaining = sum((cost for _, cost in self._window), Decimal(0))
        for stamp, cost in self._window:
            remaining -= cost
            if remaining + needed <= cap:
                return max(0.0, stamp + HOUR_S - now)
        return 0.0

    def release(self, reservation: Reservation) -> None:
        """Drop a reservation without charging (the request failed and was not billed)."""
        with self._lock:
            self._reserved.pop(reservation.id, None)

    def settle(self, reservation: Reservation, usage: TokenUsage) -> Decimal | None:
        """Record the actual cost from ``usage`` and drop the reservation."""
        cost = self.prices.cost(reservation.model, usage)
        with self._lock:
            self._reserved.pop(reservation.id, None)
            if cost is None:
                self._unpriced[reservation.model] += 1
                return None
            self._window.append((self._clock(), cost))
            self._by_agent[reservation.agent] += cost
            self._by_model[reservation.model] += cost
            self._total += cost
        return cost

    def summary(self) -> CostSummary:
        with self._lock:
            return CostSummary(
                total=self._total,
                last_hour=self._spent_last_hour(self._clock()),
                by_agent=dict(self._by_agent),
                by_model=dict(self._by_model),
                unpriced_calls=dict(self._unpriced),
                reserved=sum((r.amount for r in self._reserved.values()), Decimal(0)),
            )
