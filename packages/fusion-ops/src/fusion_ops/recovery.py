"""Recovery mechanisms: an insight cache, early termination and adaptive backoff.

- :class:`InsightCache` – a TTL + LRU cache keyed on the *normalised* request (case-folded,
  whitespace-collapsed strings; mappings with sorted keys), so a repeated request reuses its
  result instead of spending budget again.
- :func:`should_terminate_early` – stop a multi-step generation once quality reaches the
  threshold while less than ``max_budget_fraction`` of the request's budget is used.
- :class:`AdaptiveBackoff` – after consecutive breaches, wait longer (exponential, capped) and
  shrink the budget granted to the next attempt (geometric, floored); one clean run resets it.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from fusion_ops import _validate
from fusion_ops.config import BackoffConfig, EarlyTerminationConfig, InsightCacheConfig
from fusion_ops.errors import InvalidInputError
from fusion_ops.metrics import GovernorMetrics

__all__ = [
    "AdaptiveBackoff",
    "BackoffState",
    "EarlyTermination",
    "InsightCache",
    "normalise_request",
    "should_terminate_early",
]

T = TypeVar("T")
MAX_KEY_CHARS = 1_000_000


def _normalise(value: Any, depth: int = 0) -> Any:
    if depth > 20:
        raise InvalidInputError("request is nested deeper than 20 levels")
    if isinstance(value, str):
        return " ".join(value.casefold().split())
    if isinstance(value, Mapping):
        return {str(k): _normalise(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(v, depth + 1) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    raise InvalidInputError(f"request holds an unsupported {type(value).__name__} value")


def normalise_request(request: Any) -> str:
    """Stable cache key: sha256 of the canonical JSON of the normalised request."""
    canonical = json.dumps(_normalise(request), sort_keys=True, allow_nan=False)
    if len(canonical) > MAX_KEY_CHARS:
        raise InvalidInputError(f"request is too large: {len(canonical)} characters")
    return hashlib.sha256(canonical.encode()).hexdigest()


class InsightCache:
    """Thread-safe TTL + LRU cache of request results."""

    def __init__(
        self,
        config: InsightCacheConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        metrics: GovernorMetrics | None = None,
    ) -> None:
        self.config = config or InsightCacheConfig()
        self._clock = clock
        self._metrics = metrics
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self.hits = self.misses = 0

    def _count(self, result: str) -> None:
        if result == "hit":
            self.hits += 1
        else:
            self.misses += 1
        if self._metrics is not None:
            self._metrics.cache_lookups.labels(result=result).inc()

    def get(self, request: Any) -> tuple[bool, Any]:
        """(True, value) on a fresh hit, (False, None) otherwise."""
        key = normalise_request(request)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self._count("miss")
                return False, None
            expires, value = entry
            if self._clock() >= expires:
                del self._entries[key]
                self._count("expired")
                return False, None
            self._entries.move_to_end(key)
            self._count("hit")
            return True, value

    def put(self, request: Any, value: Any) -> None:
        key = normalise_request(request)
        with self._lock:
            self._entries[key] = (self._clock() + self.config.ttl_seconds, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.config.max_entries:
                self._entries.popitem(last=False)

    def get_or_compute(self, request: Any, compute: Callable[[], T]) -> tuple[T, bool]:
        """(value, was_cached). ``compute`` runs outside the lock."""
        hit, value = self.get(request)
        if hit:
            return value, True
        result = compute()
        self.put(request, result)
        return result, False

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


@dataclass(frozen=True)
class EarlyTermination:
    terminate: bool
    quality: float
    budget_fraction_used: float
    reason: str


def should_terminate_early(
    quality: float,
    tokens_used: float,
    token_budget: float,
    config: EarlyTerminationConfig | None = None,
) -> EarlyTermination:
    """Terminate when quality ≥ threshold with less than ``max_budget_fraction`` spent."""
    cfg = config or EarlyTerminationConfig()
    q = _validate.finite_number("quality", quality, minimum=0, maximum=1)
    used = _validate.finite_number("tokens_used", tokens_used, minimum=0)
    budget = _validate.finite_number(
        "token_budget", token_budget, minimum=0, exclusive_minimum=True
    )
    fraction = used / budget
    if q < cfg.quality_threshold:
        reason = f"quality {q:.2f} < {cfg.quality_threshold}"
        return EarlyTermination(False, q, fraction, reason)
    if fraction >= cfg.max_budget_fraction:
        reason = f"{fraction:.0%} of the budget used (>= {cfg.max_budget_fraction:.0%}): no saving"
        return EarlyTermination(False, q, fraction, reason)
    return EarlyTermination(
        True, q, fraction, f"quality {q:.2f} reached with {fraction:.0%} of the budget used"
    )


@dataclass(frozen=True)
class BackoffState:
    consecutive_breaches: int
    delay_seconds: float
    budget_scale: float


class AdaptiveBackoff:
    """Exponential delay and geometric budget shrink after consecutive breaches."""

    def __init__(self, config: BackoffConfig | None = None) -> None:
        self.config = config or BackoffConfig()
        self._lock = threading.Lock()
        self._breaches = 0

    def _state(self) -> BackoffState:
        k, cfg = self._breaches, self.config
        if k == 0:
            return BackoffState(0, 0.0, 1.0)
        delay = min(cfg.max_delay_seconds, cfg.base_delay_seconds * 2.0 ** min(k - 1, 60))
        scale = max(cfg.min_budget_scale, cfg.budget_scale_per_breach**k)
        return BackoffState(k, delay, scale)

    def record(self, breached: bool) -> BackoffState:
        if not isinstance(breached, bool):
            raise InvalidInputError(f"breached must be a bool, got {_validate.show(breached)}")
        with self._lock:
            self._breaches = self._breaches + 1 if breached else 0
            return self._state()

    @property
    def state(self) -> BackoffState:
        with self._lock:
            return self._state()
