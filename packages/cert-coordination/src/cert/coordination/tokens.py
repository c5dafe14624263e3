"""Input-token estimates for rate limits, calibrated on the token counts the API reports.

Why: the tokens-per-minute limit must be charged real tokens. The UTF-8 byte count is a safe
*upper* bound (Claude's tokenizer never yields more tokens than bytes for text), right for the
worst-case cost cap but about four times too high for English prose, so a 10k-token prompt
could never fit a 30k-tokens-per-minute quota. Online, the client asks the SDK's
``messages.count_tokens`` endpoint; offline (or when that call fails) it uses this estimator:
``bytes x ratio``, where the ratio is the largest tokens-per-byte ratio seen in the last
``history`` responses (their ``usage.input_tokens`` over the request's byte bound), so it errs
high. Before any response it uses ``prior`` (0.5 tokens per byte, itself conservative).
"""

from __future__ import annotations

import math
import threading
from collections import deque

from cert.coordination._validate import check_float, check_int

__all__ = ["TokenEstimator"]


class TokenEstimator:
    """Tokens from a byte bound, scaled by the largest recently observed tokens-per-byte ratio."""

    def __init__(self, *, prior: float = 0.5, history: int = 32) -> None:
        self.prior = check_float("prior", prior, minimum=0.0, maximum=1.0, allow_minimum=False)
        self._ratios: deque[float] = deque(
            maxlen=check_int("history", history, minimum=1, maximum=10_000)
        )
        self._lock = threading.Lock()

    @property
    def ratio(self) -> float:
        """Tokens per byte used now: the prior until the first observation."""
        with self._lock:
            return max(self._ratios) if self._ratios else self.prior

    @property
    def observations(self) -> int:
        with self._lock:
            return len(self._ratios)

    def estimate(self, byte_bound: int) -> int:
        """Estimated tokens of a prompt whose byte bound is ``byte_bound`` (never above it)."""
        check_int("byte_bound", byte_bound, minimum=0, maximum=10**12)
        return min(byte_bound, math.ceil(byte_bound * self.ratio))

    def observe(self, byte_bound: int, input_tokens: int) -> None:
        """Learn from a response: the API counted ``input_tokens`` for this byte bound."""
        if byte_bound <= 0 or input_tokens <= 0:
            return  # nothing to learn (a usage-less response, or an empty prompt)
        with self._lock:
            self._ratios.append(min(1.0, input_tokens / byte_bound))
