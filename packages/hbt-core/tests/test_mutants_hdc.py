"""Tests that kill the HDC kernel's surviving mutants (tools/mutate.py hbt-core --module hdc).

The bundle is the signature's core: a weighted majority whose counters must be exact (integer
weights), never truncated (fractional weights), and refused with a message that names the
problem when they cannot be. Small dimensions (8192 bits) keep each case fast.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import pytest

from hbt_core import hdc
from hbt_core.errors import DimensionMismatchError, InvalidInputError

D = hdc.MIN_DIM


def _vectors(n: int, dim: int = D) -> list[hdc.Packed]:
    return [hdc.base_vector(f"v{i}", dim) for i in range(n)]


def _refused(
    message: str, error: type[Exception] = InvalidInputError
) -> AbstractContextManager[Any]:
    return pytest.raises(error, match=f"^{re.escape(message)}$")


# ------------------------------------------------------------------------------ bundle()
def test_a_heavy_member_outvotes_the_rest() -> None:
    a, b, c = _vectors(3)
    # 2 * (3 a + b + c) > 5 exactly where a's bit is set: the bundle is a itself
    assert np.array_equal(hdc.bundle([a, b, c], weights=[3, 1, 1]), a)
    assert np.array_equal(hdc.bundle([a, b, c], weights=(w for w in [1, 1, 3])), c)
    # unweighted, the three vote as equals (and differ from each of them)
    assert not np.array_equal(hdc.bundle([a, b, c]), a)


def test_fractional_weights_are_not_truncated() -> None:
    a, b = _vectors(2)
    # truncated to integers both weights would be 0: every bit a tie
    assert np.array_equal(hdc.bundle([a, b], weights=[0.6, 0.4]), a)
    assert np.array_equal(hdc.bundle([a, b], weights=[0.4, 0.6]), b)


def test_bundle_weights_that_are_not_numbers_are_refused() -> None:
    a, b = _vectors(2)
    with _refused("weights must be a sequence of numbers"):
        hdc.bundle([a, b], weights=[1, object()])  # type: ignore[list-item]
    with _refused("weights must be finite (no NaN or inf)"):
        hdc.bundle([a, b], weights=[1.0, float("nan")])


# --------------------------------------------------------------------------- Accumulator
def test_counters_default_to_int64_and_keep_the_dtype_asked_for() -> None:
    assert hdc.Accumulator(D).counts.dtype == np.int64
    assert hdc.Accumulator(D).dtype == np.int64
    assert hdc.Accumulator(D, dtype=np.float32).counts.dtype == np.float32
    with _refused("dtype must be an integer or float dtype, got bool"):
        hdc.Accumulator(D, dtype=bool)


def test_adding_accumulates_in_every_path() -> None:
    vs = np.stack(_vectors(40))
    bits = hdc.unpack(vs).astype(np.int64)
    many_levels = np.arange(1, 41)  # more than 32 distinct weights: the BLAS path
    for weights in (None, np.ones(40, dtype=np.int64), many_levels):
        acc = hdc.Accumulator(D)
        acc.add_many(vs, weights)
        acc.add_many(vs, weights)
        w = np.ones(40, dtype=np.int64) if weights is None else weights
        assert np.array_equal(acc.counts, 2 * (w @ bits))
        assert acc.total == 2 * w.sum()
    acc = hdc.Accumulator(D, dtype=np.float64)
    w = np.linspace(0.1, 0.9, 40)
    acc.add_many(vs, w)
    acc.add_many(vs, w)
    assert np.allclose(acc.counts, 2 * (w @ bits), rtol=0, atol=1e-9)
    assert acc.counts[bits[0] == 1].min() >= 0.2 - 1e-9  # fractions kept, never rounded
    assert acc.total == pytest.approx(2 * w.sum())


def test_integer_counters_take_whole_float_weights_below_two_to_the_53() -> None:
    vs = np.stack(_vectors(2))
    acc = hdc.Accumulator(D)
    acc.add_many(vs, [1.0, 2.0**53 - 1])
    assert acc.total == 2**53
    assert acc.counts.max() == 2**53
    for bad in ([0.5, 1.0], [1.0, 2.0**53], [1.0, -(2.0**53)]):
        with _refused(
            "weights must be whole numbers below 2**53 for integer counters; "
            "Accumulator(dtype=np.float64) takes fractional or larger weights"
        ):
            hdc.Accumulator(D).add_many(vs, bad)
    floats = hdc.Accumulator(D, dtype=np.float64)
    floats.add_many(vs, [0.5, 2.0**60])
    assert floats.total == 0.5 + 2.0**60


def test_bundle_takes_whole_weights_of_2_to_the_53_and_more_on_float_counters() -> None:
    """bundle() has no dtype to choose: weights an int64 counter cannot sum exactly go to
    float64 counters, as fractional ones do, instead of a refusal naming an argument it lacks."""
    vs = np.stack(_vectors(3))
    heavy = hdc.bundle(vs, [2.0**60, 1.0, 1.0])
    assert np.array_equal(heavy, vs[0])
    assert np.array_equal(hdc.bundle(vs, [1.0, 2.0**53, 1.0]), vs[1])


def test_every_accumulator_refusal_names_the_problem() -> None:
    acc = hdc.Accumulator(D)
    wide = hdc.base_vector("w", 2 * D)
    with _refused(f"hypervector has {2 * D} bits, bundle has {D}", DimensionMismatchError):
        acc.add(wide)
    with _refused(f"hypervectors have {2 * D} bits, bundle has {D}", DimensionMismatchError):
        acc.add_many(np.stack([wide]))
    with _refused(f"bundle dims differ: {D} vs {2 * D}", DimensionMismatchError):
        acc.merge(hdc.Accumulator(2 * D))
    with _refused("weights must have shape (2,), got (3,)"):
        acc.add_many(np.stack(_vectors(2)), [1, 1, 1])
    with _refused("weights must be numbers, got dtype <U1"):
        acc.add_many(np.stack(_vectors(1)), np.array(["1"]))
    with _refused("counts must be 1-D, got shape (2, 3)"):
        hdc.Accumulator.from_counts(np.zeros((2, 3)), 0)
    with _refused("counts must be finite"):
        hdc.Accumulator.from_counts(np.full(D, np.inf), 0)
    with _refused("total must be finite, got nan"):
        hdc.Accumulator.from_counts(np.zeros(D), float("nan"))
    with _refused("factor must be finite, got inf"):
        acc.scale(float("inf"))


def test_from_counts_keeps_size_dtype_values_and_tie_seed_and_owns_its_counters() -> None:
    fractional = np.full(D, 0.5)
    acc = hdc.Accumulator.from_counts(fractional, 1.5)
    assert (acc.dim, acc.counts.dtype, acc.total, acc.tie_seed) == (D, np.float64, 1.5, "tie-break")
    assert np.array_equal(acc.counts, fractional)
    acc.add(hdc.base_vector("x", D), 1.0)
    assert np.array_equal(fractional, np.full(D, 0.5))  # the caller's array is untouched
    # counters of any other kind become int64 (an unsigned or bool dtype is not refused)
    for counts in (np.ones(D, dtype=np.uint8), np.ones(D, dtype=bool)):
        ints = hdc.Accumulator.from_counts(counts, 2)
        assert ints.counts.dtype == np.int64
        assert np.array_equal(ints.counts, np.ones(D, dtype=np.int64))
    seeded = hdc.Accumulator.from_counts(np.zeros(D, dtype=np.int64), 0, tie_seed="other")
    assert seeded.tie_seed == "other"


def test_ties_break_by_the_seed_at_any_dimension() -> None:
    a, b = _vectors(2)
    acc = hdc.Accumulator(D)
    acc.add(a)
    acc.add(b)
    # where a and b differ it is a tie: the default seed decides, the same after a rebuild
    rebuilt = hdc.Accumulator.from_counts(acc.counts, acc.total)
    assert np.array_equal(rebuilt.threshold(), acc.threshold())
    other = hdc.Accumulator.from_counts(acc.counts, acc.total, tie_seed="other")
    assert not np.array_equal(other.threshold(), acc.threshold())
    tie_bits = hdc.unpack(hdc.base_vector("tie-break", D, namespace="hbt-tie"))
    differ = hdc.unpack(a) != hdc.unpack(b)
    result = hdc.unpack(acc.threshold())
    assert np.array_equal(result[differ], tie_bits[differ])


def test_copy_is_equal_and_independent() -> None:
    acc = hdc.Accumulator(D, tie_seed="s")
    acc.add_many(np.stack(_vectors(3)), [1, 2, 3])
    twin = acc.copy()
    assert (twin.total, twin.tie_seed, twin.dim) == (6.0, "s", D)
    assert np.array_equal(twin.counts, acc.counts)
    twin.add(hdc.base_vector("y", D))
    assert twin.total == 7.0
    assert acc.total == 6.0
    assert not np.array_equal(twin.counts, acc.counts)


def test_scale_multiplies_counters_and_total() -> None:
    acc = hdc.Accumulator(D, dtype=np.float64)
    acc.add_many(np.stack(_vectors(2)), [2.0, 4.0])
    before = acc.counts.copy()
    acc.scale(0.25)
    assert acc.total == 1.5
    assert np.array_equal(acc.counts, before * 0.25)


# --------------------------------------------------------------------------- vectors
def test_pack_and_permute_work_row_by_row_on_a_matrix() -> None:
    a, b = _vectors(2)
    matrix = np.stack([a, b])
    assert np.array_equal(hdc.pack(hdc.unpack(matrix)), matrix)
    rotated = hdc.permute(matrix, 3)
    assert np.array_equal(rotated, np.stack([hdc.permute(a, 3), hdc.permute(b, 3)]))
    # a rotation by one bit moves the last bit of each row to the front of that row
    assert hdc.unpack(hdc.permute(a))[0] == hdc.unpack(a)[-1]


def test_unpack_reads_word_values_whatever_their_byte_order() -> None:
    (a,) = _vectors(1)
    assert np.array_equal(hdc.unpack(a.astype(">u8")), hdc.unpack(a))


def test_a_namespace_counts_by_its_first_16_bytes() -> None:
    """BLAKE2b's personalisation holds 16 bytes; a longer namespace is cut, not refused."""
    long = hdc.base_vector("k", D, namespace="a-namespace-longer-than-16")
    assert np.array_equal(long, hdc.base_vector("k", D, namespace="a-namespace-long"))
    assert not np.array_equal(long, hdc.base_vector("k", D, namespace="a-namespace-lon"))


def test_every_vector_refusal_names_the_problem() -> None:
    (a,) = _vectors(1)
    with _refused("bit length must be a multiple of 64, got 10"):
        hdc.pack(np.zeros(10, dtype=np.uint8))
    with _refused("shift must be an int, got float 1.5"):
        hdc.permute(a, 1.5)  # type: ignore[arg-type]
    with _refused("key must be str or bytes, got int"):
        hdc.base_vector(7, D)  # type: ignore[arg-type]
    with _refused("dim must be a multiple of 64, got 8200"):
        hdc.check_dim(8200)
    with _refused(f"dim must be >= {D}, got 64"):
        hdc.check_dim(64)
    with _refused(f"hypervector dims differ: {D} vs {2 * D} bits", DimensionMismatchError):
        hdc.bind(a, hdc.base_vector("w", 2 * D))


# --------------------------------------------------------------------------- distances
def _random_rows(rows: int, words: int, seed: int = 0) -> hdc.Packed:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2**64, size=(rows, words), dtype=np.uint64)


def test_hamming_many_matches_one_by_one_in_every_shape_and_path() -> None:
    (q,) = _vectors(1)
    rows = _random_rows(2500, D // 64)  # more than one block of 1024 rows
    expected = np.array([hdc.hamming(q, r) for r in rows])
    one = hdc.hamming_many(q, rows[0])  # one row: a scalar
    assert (one, one.dtype) == (expected[0], np.int64)
    many = hdc.hamming_many(q, rows)
    assert many.dtype == np.int64  # distances are counts, not floats
    assert np.array_equal(many, expected)
    for threads in (2, 3):
        assert np.array_equal(hdc.hamming_many(q, rows, threads=threads), expected)
    cube = rows[:6].reshape(2, 3, -1)
    assert np.array_equal(hdc.hamming_many(q, cube), expected[:6].reshape(2, 3))


def test_hamming_many_splits_a_large_matrix_without_changing_a_distance() -> None:
    (q,) = _vectors(1)
    rows = _random_rows(hdc._PARALLEL_ROWS, D // 64, seed=1)
    expected = np.bitwise_count(rows ^ q).sum(axis=1, dtype=np.int64)
    assert np.array_equal(hdc.hamming_many(q, rows), expected)


@pytest.mark.parametrize("dim", [65_472, 65_536, hdc.MAX_DIM])
def test_distances_beyond_16_bits_do_not_wrap(dim: int) -> None:
    """A complement differs in every bit: a 16-bit counter would wrap at 65 536."""
    q = hdc.base_vector("q", dim)
    assert hdc.dim_of(q) == dim
    complement = np.stack([~q, q])
    assert hdc.hamming_many(q, complement).tolist() == [dim, 0]


def test_the_numba_kernel_is_compiled_once_and_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("numba")
    monkeypatch.setattr(hdc, "_NUMBA_KERNEL", None)
    (q,) = _vectors(1)
    rows = _random_rows(5, D // 64)
    assert np.array_equal(hdc.hamming_many_numba(q, rows), hdc.hamming_many(q, rows))
    kernel = hdc._NUMBA_KERNEL
    assert kernel is not None
    hdc.hamming_many_numba(q, rows)
    assert hdc._NUMBA_KERNEL is kernel
