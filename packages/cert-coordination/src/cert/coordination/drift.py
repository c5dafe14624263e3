"""Sequential drift detection on judge scores, with a stated false-alarm probability.

Per stream (a task and the role that produced the answers, e.g. ``"baseline"`` for lone agents
or a strategy name for a team: their scores differ by design and must never be compared with
each other), the first ``reference_size`` scores form the reference. Every following block of
scores is compared with the reference by a two-sided Wilcoxon-Mann-Whitney rank-sum test
(mid-ranks for ties). The k-th test runs at level α_k = α · 6 / (π² k²), so the levels sum to α:
under the null hypothesis that scores are exchangeable (no drift), the probability of *ever*
raising an alarm on an unbounded stream is at most α (union bound).

Why this test: a rank test's exact permutation p-value is computable by dynamic programming,
so p-values far below any Monte Carlo floor are exact; and its smallest possible p-value,
``2 / C(n + m, m)`` without ties, falls as the block size m grows. Each block is made just large
enough that this floor lies below α_k (``window_size`` until that no longer suffices), so a
clear shift stays detectable after any number of windows, not only the first few dozen.
When the exact computation would exceed a fixed budget (very large reference and block), the
normal approximation with tie correction is used instead and flagged in ``DriftStatus.method``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Hashable
from dataclasses import dataclass, field

import numpy as np

from cert.coordination._validate import check_float, check_int

__all__ = ["DriftStatus", "JudgeDriftDetector", "rank_sum_p_value", "spending_level"]

# Cells touched by the exact dynamic programme above which the normal approximation is used
# (about a second of numpy work on a slow machine).
_EXACT_BUDGET = 300_000_000


@dataclass
class DriftStatus:
    """State of one stream."""

    scores_seen: int = 0
    tests_run: int = 0
    alarm: bool = False
    last_p_value: float | None = None
    last_level: float | None = None
    alarm_at: int | None = None
    next_window: int = 0
    method: str | None = None


@dataclass
class _Stream:
    reference: list[float] = field(default_factory=list)
    window: list[float] = field(default_factory=list)
    status: DriftStatus = field(default_factory=DriftStatus)


def spending_level(alpha: float, k: int) -> float:
    """α_k = α · 6 / (π² k²): the k-th test's level; Σ_k α_k = α."""
    return alpha * 6.0 / (math.pi**2 * k * k)


def window_for_level(reference_size: int, minimum: int, level: float) -> int:
    """Smallest block size ≥ ``minimum`` whose untied rank-test floor 2/C(n+m, m) is ≤ level."""

    def reaches(size: int) -> bool:
        return level * math.comb(reference_size + size, size) >= 2

    if reaches(minimum):
        return minimum
    low, high = minimum, 2 * minimum  # invariant: not reaches(low)
    while not reaches(high):
        low, high = high, 2 * high
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if reaches(middle) else (middle, high)
    return high


def rank_sum_p_value(reference: np.ndarray, window: np.ndarray) -> tuple[float, str]:
    """Two-sided rank-sum p-value of ``window`` against ``reference`` and the method used.

    Exact under exchangeability (ties handled by mid-ranks, conditional on the tie pattern):
    the p-value is the fraction of all C(N, m) ways to pick the window's positions whose rank
    sum is at least as far from its mean as the observed one.
    """
    pooled = np.concatenate([reference, window])
    n_total = pooled.size
    # Doubled mid-ranks are integers: 2 · mean of the 1-based ranks a tied group occupies.
    order = np.argsort(pooled, kind="stable")
    sorted_values = pooled[order]
    doubled = np.empty(n_total, dtype=np.int64)
    start = 0
    while start < n_total:
        end = start
        while end + 1 < n_total and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        doubled[order[start : end + 1]] = (start + 1) + (end + 1)
        start = end + 1
    small = min(reference.size, window.size)  # the rank sum of the smaller group decides
    observed = int(doubled[reference.size :].sum()) if small == window.size else None
    if observed is None:
        observed = int(doubled[: reference.size].sum())
    centre = small * (n_total + 1)  # E[sum of doubled ranks of `small` elements]
    distance = abs(observed - centre)
    top = int(np.sort(doubled)[-small:].sum())
    if (small + 1) * (top + 1) * n_total > _EXACT_BUDGET:
        return _normal_p_value(doubled, small, distance), "normal"
    counts = np.zeros((small + 1, top + 1))
    counts[0, 0] = 1.0
    for rank in doubled.tolist():  # counts[j, s]: subsets of size j with doubled rank sum s
        counts[1:, rank:] += counts[:-1, : top + 1 - rank].copy()
    sums = np.arange(top + 1)
    extreme = np.abs(sums - centre) >= distance
    return float(counts[small, extreme].sum() / counts[small].sum()), "exact"


def _normal_p_value(doubled: np.ndarray, small: int, distance: int) -> float:
    n_total = doubled.size
    ranks = doubled / 2.0
    variance = (
        small * (n_total - small) / (n_total * (n_total - 1)) * ((ranks - ranks.mean()) ** 2).sum()
    )
    if variance <= 0.0:  # every score tied: no evidence of anything
        return 1.0
    z = (distance / 2.0) / math.sqrt(variance)
    return min(1.0, math.erfc(z / math.sqrt(2.0)))


class JudgeDriftDetector:
    """Detects a shift of judge scores per stream; total false-alarm probability ≤ ``alpha``.

    ``window_size`` is the smallest block tested; later blocks grow when needed so that the
    test can still reach its shrinking level (see the module docstring).
    """

    def __init__(
        self, *, alpha: float = 0.05, reference_size: int = 10, window_size: int = 10
    ) -> None:
        self.alpha = check_float("alpha", alpha, minimum=0.0, maximum=0.5, allow_minimum=False)
        self.reference_size = check_int("reference_size", reference_size, minimum=2, maximum=10_000)
        self.window_size = check_int("window_size", window_size, minimum=2, maximum=10_000)
        self._streams: dict[Hashable, _Stream] = {}
        self._lock = threading.Lock()

    def _window_needed(self, tests_run: int) -> int:
        level = spending_level(self.alpha, tests_run + 1)
        return window_for_level(self.reference_size, self.window_size, level)

    def update(self, key: Hashable, score: float) -> DriftStatus:
        """Add one score of stream ``key`` and return its status (alarms are sticky).

        ``key`` names one stream, e.g. ``(task, role)``; streams never share a reference.
        """
        score = check_float("score", score, minimum=0.0, maximum=1.0)
        with self._lock:
            stream = self._streams.get(key)
            if stream is None:
                stream = self._streams[key] = _Stream()
                stream.status.next_window = self._window_needed(0)
            status = stream.status
            status.scores_seen += 1
            if len(stream.reference) < self.reference_size:
                stream.reference.append(score)
                return DriftStatus(**vars(status))
            if status.alarm:
                return DriftStatus(**vars(status))
            stream.window.append(score)
            if len(stream.window) < status.next_window:
                return DriftStatus(**vars(status))
            status.tests_run += 1
            level = spending_level(self.alpha, status.tests_run)
            p_value, method = rank_sum_p_value(
                np.asarray(stream.reference), np.asarray(stream.window)
            )
            stream.window.clear()
            status.last_p_value = p_value
            status.last_level = level
            status.method = method
            status.next_window = self._window_needed(status.tests_run)
            if p_value <= level:
                status.alarm = True
                status.alarm_at = status.scores_seen
            return DriftStatus(**vars(status))

    def status(self, key: Hashable) -> DriftStatus:
        with self._lock:
            stream = self._streams.get(key)
            if stream is None:
                return DriftStatus(next_window=self._window_needed(0))
            return DriftStatus(**vars(stream.status))
