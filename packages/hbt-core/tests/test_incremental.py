"""Incremental updates equal batch recomputation; reservoir inclusion is uniform; no mutation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hbt_core.errors import DimensionMismatchError, InvalidInputError
from hbt_core.hdc import Accumulator, base_vector
from hbt_core.incremental import AdaptiveWeighting, ExponentialDecay, Reservoir, SlidingWindow

DIM = 8192


def _stream(n: int, seed: int = 0) -> np.ndarray:
    return np.stack([base_vector(f"r{seed}:{i}", DIM) for i in range(n)])


def _chunks(data: np.ndarray, cuts: list[int]) -> list[np.ndarray]:
    return np.split(data, sorted({c % (len(data) + 1) for c in cuts}))


chunking = st.lists(st.integers(0, 60), max_size=5)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 40), chunking, st.floats(0.5, 1.0))
def test_exponential_decay_equals_batch(n: int, cuts: list[int], decay: float) -> None:
    data = _stream(n)
    inc = ExponentialDecay(DIM, decay)
    for chunk in _chunks(data, cuts):
        inc.update(chunk)
    batch = Accumulator(DIM, dtype=np.float64)
    batch.add_many(data, decay ** np.arange(n - 1, -1, -1))
    assert np.allclose(inc.acc.counts, batch.counts)
    assert np.isclose(inc.acc.total, batch.total)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 40), chunking, st.integers(1, 15))
def test_sliding_window_equals_batch(n: int, cuts: list[int], window: int) -> None:
    data = _stream(n)
    inc = SlidingWindow(DIM, window)
    for chunk in _chunks(data, cuts):
        inc.update(chunk)
    batch = Accumulator(DIM)
    batch.add_many(data[-window:])
    assert np.array_equal(inc.acc.counts, batch.counts)
    assert inc.acc.total == batch.total


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 30), chunking)
def test_adaptive_equals_batch_and_order_free(n: int, cuts: list[int]) -> None:
    data, ref = _stream(n), base_vector("ref", DIM)
    inc = AdaptiveWeighting(ref, gain=4)
    for chunk in _chunks(data[::-1], cuts):
        inc.update(chunk)
    batch = Accumulator(DIM)
    batch.add_many(data, inc.weights(data))
    assert np.array_equal(inc.acc.counts, batch.counts)
    near = np.stack([ref])
    assert inc.weights(near)[0] == 1
    assert inc.weights(data).max() >= 2


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 60), chunking, st.integers(1, 12), st.integers(0, 100))
def test_reservoir_equals_batch(n: int, cuts: list[int], k: int, seed: int) -> None:
    data = _stream(n)
    inc, one_shot = Reservoir(DIM, k, seed), Reservoir(DIM, k, seed)
    for chunk in _chunks(data, cuts):
        inc.update(chunk)
    one_shot.update(data)
    assert inc.indices == one_shot.indices
    batch = Accumulator(DIM)
    batch.add_many(data[inc.indices])
    assert np.array_equal(inc.acc.counts, batch.counts)


def test_reservoir_inclusion_is_uniform() -> None:
    n, k, trials = 40, 8, 3000
    counts = np.zeros(n)
    data = _stream(n)
    for seed in range(trials):
        r = Reservoir(DIM, k, seed)
        r.update(data)
        counts[r.indices] += 1
    expected = trials * k / n
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 72.0  # chi-square 0.999 quantile with 39 degrees of freedom is ~72.1


def test_inputs_are_not_mutated() -> None:
    data = _stream(10)
    before = data.copy()
    for upd in (
        ExponentialDecay(DIM),
        SlidingWindow(DIM, 3),
        Reservoir(DIM, 3),
        AdaptiveWeighting(base_vector("ref", DIM)),
    ):
        upd.update(data)
    assert np.array_equal(data, before)


def test_bad_inputs() -> None:
    with pytest.raises(InvalidInputError):
        ExponentialDecay(DIM, decay=float("nan"))
    with pytest.raises(InvalidInputError):
        SlidingWindow(DIM, 0)
    with pytest.raises(InvalidInputError):
        Reservoir(DIM, 3).update(np.zeros((2, 128), dtype=np.int64))
    with pytest.raises(DimensionMismatchError):
        SlidingWindow(DIM, 3).update(_stream(2)[:, :64])
