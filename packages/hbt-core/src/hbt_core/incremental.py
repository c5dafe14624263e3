"""Incremental signature updates on counters; each strategy equals its batch recomputation.

Every updater consumes response hypervectors (packed rows) in stream order and keeps counters:

- exponential decay: ``C <- lambda^m C + sum_j lambda^(m-1-j) x_j`` (float counters);
- sliding window: the last ``W`` responses, adding the new and subtracting the evicted;
- adaptive weighting: integer weight ``1 + floor(gain * 2 * d(x, reference) / D)``, so responses
  far from the reference (novel behaviour) count more; the reference is fixed, hence order-free;
- reservoir: Algorithm R with a seeded RNG keeps a uniform sample of ``k`` responses.

Inputs are never mutated: the updaters copy what they keep.
"""

from __future__ import annotations

import enum
from collections import deque

import numpy as np
import numpy.typing as npt

from hbt_core.errors import (
    DimensionMismatchError,
    InvalidInputError,
    check_finite_number,
    check_int,
)
from hbt_core.hdc import Accumulator, Packed, check_dim, dim_of, hamming_many, unpack


class UpdateStrategy(enum.Enum):
    EXPONENTIAL_DECAY = "exponential_decay"
    SLIDING_WINDOW = "sliding_window"
    ADAPTIVE = "adaptive"
    RESERVOIR = "reservoir"


def _rows(hvs: Packed, dim: int) -> Packed:
    m = np.asarray(hvs)
    if m.dtype != np.uint64:
        raise InvalidInputError(f"responses must be packed uint64 hypervectors, got {m.dtype}")
    m = np.atleast_2d(m)
    if m.ndim != 2 or dim_of(m) != dim:
        raise DimensionMismatchError(f"responses have {dim_of(m)} bits, signature has {dim}")
    return m


class ExponentialDecay:
    """Exponentially forgetting bundle; ``prior`` counters (if any) age like old responses."""

    def __init__(self, dim: int, decay: float = 0.95, prior: Accumulator | None = None) -> None:
        self.dim = check_dim(dim)
        self.decay = check_finite_number("decay", decay, low=1e-6, high=1.0)
        self.acc = Accumulator(dim, dtype=np.float64)
        if prior is not None:
            self.acc.merge(prior)

    def update(self, hvs: Packed) -> None:
        m = _rows(hvs, self.dim)
        n = m.shape[0]
        if n == 0:
            return
        weights = self.decay ** np.arange(n - 1, -1, -1, dtype=np.float64)
        self.acc.scale(self.decay**n)
        self.acc.add_many(m, weights)


class SlidingWindow:
    """Bundle of the last ``window`` responses, exact integer counters."""

    def __init__(self, dim: int, window: int = 1000) -> None:
        self.dim = check_dim(dim)
        self.window = check_int("window", window, low=1, high=10_000_000)
        self.acc = Accumulator(dim)
        self.buffer: deque[Packed] = deque()

    def update(self, hvs: Packed) -> None:
        m = _rows(hvs, self.dim)[-self.window :]
        evict = max(0, len(self.buffer) + m.shape[0] - self.window)
        if evict:
            old = np.stack([self.buffer.popleft() for _ in range(evict)])
            self.acc.counts -= unpack(old).sum(axis=0, dtype=np.int64)
            self.acc.total -= evict
        self.acc.add_many(m)
        self.buffer.extend(m.copy())


class AdaptiveWeighting:
    """Weights responses by their distance to a fixed reference hypervector."""

    def __init__(self, reference: Packed, gain: int = 4) -> None:
        self.reference = np.array(reference, dtype=np.uint64, copy=True)
        self.dim = dim_of(self.reference)
        self.gain = check_int("gain", gain, low=0, high=1_000)
        self.acc = Accumulator(self.dim)

    def weights(self, hvs: Packed) -> npt.NDArray[np.int64]:
        d = hamming_many(self.reference, _rows(hvs, self.dim))
        return 1 + (self.gain * 2 * d) // self.dim

    def update(self, hvs: Packed) -> None:
        m = _rows(hvs, self.dim)
        self.acc.add_many(m, self.weights(m))


class Reservoir:
    """Algorithm R: after ``n`` items each is in the reservoir with probability ``k / n``."""

    def __init__(self, dim: int, capacity: int = 1000, seed: int = 0) -> None:
        self.dim = check_dim(dim)
        self.capacity = check_int("capacity", capacity, low=1, high=10_000_000)
        self.rng = np.random.default_rng(check_int("seed", seed, low=0))
        self.items: list[Packed] = []
        self.indices: list[int] = []
        self.seen = 0
        self.acc = Accumulator(dim)

    def update(self, hvs: Packed) -> None:
        m = _rows(hvs, self.dim)
        added, removed = [], []
        for row in m:
            if self.seen < self.capacity:
                self.items.append(row.copy())
                self.indices.append(self.seen)
                added.append(row)
            else:
                j = int(self.rng.integers(0, self.seen + 1))
                if j < self.capacity:
                    removed.append(self.items[j])
                    added.append(row)
                    self.items[j] = row.copy()
                    self.indices[j] = self.seen
            self.seen += 1
        if added:
            self.acc.add_many(np.stack(added))
        if removed:
            self.acc.counts -= unpack(np.stack(removed)).sum(axis=0, dtype=np.int64)
            self.acc.total -= len(removed)


Updater = ExponentialDecay | SlidingWindow | AdaptiveWeighting | Reservoir
