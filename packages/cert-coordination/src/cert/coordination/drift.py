"""Sequential drift detection on judge scores, with a stated false-alarm probability.

Per task, the first ``reference_size`` scores form the reference. Every following block of
``window_size`` scores is compared with the reference by a two-sample permutation test of the
difference in means. The k-th test runs at level α_k = α · 6 / (π² k²), so the levels sum to α:
under the null hypothesis that scores are exchangeable (no drift), the probability of *ever*
raising an alarm on an unbounded stream is at most α (union bound; the Monte Carlo permutation
p-value ``(1 + #{|Δ*| ≥ |Δ|}) / (B + 1)`` is itself valid). No distributional assumption is made.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

import numpy as np

from cert.coordination._validate import check_float, check_int


@dataclass
class DriftStatus:
    """State of one task's stream."""

    scores_seen: int = 0
    tests_run: int = 0
    alarm: bool = False
    last_p_value: float | None = None
    last_level: float | None = None
    alarm_at: int | None = None


@dataclass
class _Stream:
    reference: list[float] = field(default_factory=list)
    window: list[float] = field(default_factory=list)
    status: DriftStatus = field(default_factory=DriftStatus)


def spending_level(alpha: float, k: int) -> float:
    """α_k = α · 6 / (π² k²): the k-th test's level; Σ_k α_k = α."""
    return alpha * 6.0 / (math.pi**2 * k * k)


def permutation_p_value(
    reference: np.ndarray, window: np.ndarray, *, permutations: int, rng: np.random.Generator
) -> float:
    """Monte Carlo two-sided permutation p-value for a difference in means."""
    pooled = np.concatenate([reference, window])
    observed = abs(window.mean() - reference.mean())
    n_ref = reference.size
    shuffled = rng.permuted(np.tile(pooled, (permutations, 1)), axis=1)
    diffs = np.abs(shuffled[:, n_ref:].mean(axis=1) - shuffled[:, :n_ref].mean(axis=1))
    exceed = int((diffs >= observed - 1e-12).sum())
    return (1 + exceed) / (permutations + 1)


class JudgeDriftDetector:
    """Detects a shift of judge scores per task; total false-alarm probability ≤ ``alpha``."""

    def __init__(
        self,
        *,
        alpha: float = 0.05,
        reference_size: int = 10,
        window_size: int = 10,
        max_permutations: int = 20_000,
        seed: int = 0,
    ) -> None:
        self.alpha = check_float("alpha", alpha, minimum=0.0, maximum=0.5, allow_minimum=False)
        self.reference_size = check_int("reference_size", reference_size, minimum=2, maximum=10_000)
        self.window_size = check_int("window_size", window_size, minimum=2, maximum=10_000)
        self.max_permutations = check_int(
            "max_permutations", max_permutations, minimum=100, maximum=1_000_000
        )
        self._rng = np.random.default_rng(seed)
        self._streams: dict[str, _Stream] = {}
        self._lock = threading.Lock()

    def update(self, key: str, score: float) -> DriftStatus:
        """Add one score of stream ``key`` and return its status (alarms are sticky)."""
        score = check_float("score", score, minimum=0.0, maximum=1.0)
        with self._lock:
            stream = self._streams.setdefault(key, _Stream())
            stream.status.scores_seen += 1
            if len(stream.reference) < self.reference_size:
                stream.reference.append(score)
                return stream.status
            stream.window.append(score)
            if len(stream.window) < self.window_size or stream.status.alarm:
                if len(stream.window) >= self.window_size:
                    stream.window.clear()
                return stream.status
            stream.status.tests_run += 1
            level = spending_level(self.alpha, stream.status.tests_run)
            # Enough permutations that a p-value below the level is reachable.
            permutations = min(self.max_permutations, max(1000, math.ceil(20 / level)))
            p_value = permutation_p_value(
                np.asarray(stream.reference),
                np.asarray(stream.window),
                permutations=permutations,
                rng=self._rng,
            )
            stream.window.clear()
            stream.status.last_p_value = p_value
            stream.status.last_level = level
            if p_value <= level:
                stream.status.alarm = True
                stream.status.alarm_at = stream.status.scores_seen
            return stream.status

    def status(self, key: str) -> DriftStatus:
        with self._lock:
            stream = self._streams.get(key)
            return DriftStatus() if stream is None else DriftStatus(**vars(stream.status))
