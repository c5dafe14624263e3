"""The spend cap of one collection run against a paid model.

Before each request the cap reserves the request's worst case: an upper bound of its prompt
tokens (the prompt's UTF-8 byte count plus message framing; a byte-level tokenizer never yields
more tokens than bytes, so for English prose the bound is about 4x the real count) at the dearer
of the input and cache-write prices, plus ``max_output_tokens`` at the output price. A request
that does not fit next to what was spent and what in-flight requests hold is not sent. After the
call the reservation is replaced by the real cost from the reported usage; a failed call releases
it (a failed request is not billed). The cap is therefore only exceeded if a provider bills more
than the bound, and the bound is deliberately pessimistic.

Money is :class:`decimal.Decimal`; prices are USD per million tokens (MTok) and have no embedded
table: they change, so the caller states them (see docs/packages/fusion-ops.md).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fusion_ops import _validate
from fusion_ops.backends import Completion
from fusion_ops.errors import SpendCapReachedError
from fusion_ops.report import Sample

__all__ = ["PROMPT_FRAMING_TOKENS", "Prices", "SpendCap", "prompt_token_bound"]

MILLION = Decimal(1_000_000)
PROMPT_FRAMING_TOKENS = 32
# Anthropic bills a 5-minute cache write at 1.25x and a cache read at 0.1x the input price.
CACHE_WRITE_FACTOR = Decimal("1.25")
CACHE_READ_FACTOR = Decimal("0.1")


def prompt_token_bound(prompt: str) -> int:
    """An upper bound of the tokens one user message with this text costs."""
    return len(prompt.encode("utf-8")) + PROMPT_FRAMING_TOKENS


def _price(field: str, value: Any) -> Decimal:
    # str() of the validated float keeps the decimal the user typed (0.1 stays 0.1)
    return Decimal(str(_validate.finite_number(field, value, minimum=0)))


@dataclass(frozen=True)
class Prices:
    """USD per million tokens, per kind of token."""

    input: Decimal
    output: Decimal
    cache_write: Decimal
    cache_read: Decimal

    @classmethod
    def per_mtok(
        cls,
        input: float,
        output: float,
        *,
        cache_write: float | None = None,
        cache_read: float | None = None,
    ) -> Prices:
        """Validated prices; cache prices default to Anthropic's multiples of the input price."""
        base = _price("price_input", input)
        return cls(
            input=base,
            output=_price("price_output", output),
            cache_write=(
                base * CACHE_WRITE_FACTOR
                if cache_write is None
                else _price("price_cache_write", cache_write)
            ),
            cache_read=(
                base * CACHE_READ_FACTOR
                if cache_read is None
                else _price("price_cache_read", cache_read)
            ),
        )

    def cost(self, usage: Completion | Sample) -> Decimal:
        """What one call cost according to its reported usage."""
        total = (
            self.input * (usage.input_tokens or 0)
            + self.output * (usage.output_tokens or 0)
            + self.cache_write * (usage.cache_creation_input_tokens or 0)
            + self.cache_read * (usage.cache_read_input_tokens or 0)
        )
        return total / MILLION

    def worst_case(self, prompt: str, max_output_tokens: int) -> Decimal:
        prompt_price = max(self.input, self.cache_write)
        return (
            prompt_price * prompt_token_bound(prompt) + self.output * max_output_tokens
        ) / MILLION

    def to_json(self) -> dict[str, str]:
        return {k: str(getattr(self, k)) for k in ("input", "output", "cache_write", "cache_read")}


class SpendCap:
    """Thread-safe reserve / settle / release accounting of one run's spend."""

    def __init__(self, cap_usd: float, prices: Prices, *, max_output_tokens: int) -> None:
        self.cap = Decimal(
            str(
                _validate.finite_number("max_spend_usd", cap_usd, minimum=0, exclusive_minimum=True)
            )
        )
        self.prices = prices
        self.max_output_tokens = _validate.integer(
            "max_output_tokens", max_output_tokens, minimum=1
        )
        self.spent = Decimal(0)
        self.held = Decimal(0)
        self.requests = 0
        self._lock = threading.Lock()

    def reserve(self, prompt: str) -> Decimal:
        """Hold the worst case of one request, or raise :class:`SpendCapReachedError`."""
        amount = self.prices.worst_case(prompt, self.max_output_tokens)
        with self._lock:
            if self.spent + self.held + amount > self.cap:
                raise SpendCapReachedError(
                    f"spend cap ${self.cap} reached: spent ${self.spent:.6f}, in flight "
                    f"${self.held:.6f}, next request may cost up to ${amount:.6f}"
                )
            self.held += amount
            return amount

    def settle(self, reserved: Decimal, completion: Completion) -> Decimal:
        """Swap a reservation for the real cost of the completion; return that cost."""
        cost = self.prices.cost(completion)
        with self._lock:
            self.held -= reserved
            self.spent += cost
            self.requests += 1
        return cost

    def release(self, reserved: Decimal) -> None:
        with self._lock:
            self.held -= reserved

    def summary(self) -> dict[str, Any]:
        """What goes into the report metadata (Decimal as strings, nothing rounded)."""
        with self._lock:
            return {
                "cap_usd": str(self.cap),
                "spent_usd": str(self.spent),
                "billed_requests": self.requests,
                "max_output_tokens": self.max_output_tokens,
                "prices_usd_per_mtok": self.prices.to_json(),
            }
