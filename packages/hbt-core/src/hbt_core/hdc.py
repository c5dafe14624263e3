"""Binary hyperdimensional computing kernel on bit-packed ``uint64`` words.

A hypervector of dimension ``D`` is a little-endian ``uint64`` array of ``D // 64`` words.
Base vectors come from BLAKE2b of their key, so the same key gives the same bytes in every
process, interpreter hash seed and platform. Bundling keeps integer (or float) counters per bit,
which makes it associative and exact under any order or sharding; thresholding breaks ties with
a seeded tie-break vector instead of a coin flip per call.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt

from hbt_core.errors import (
    DimensionMismatchError,
    InvalidInputError,
    check_finite_number,
    check_int,
)

DEFAULT_DIM = 16_384
MIN_DIM = 8_192
MAX_DIM = 100_352  # 100K rounded up to a multiple of 64
WORD_BITS = 64
WORD_DTYPE = np.dtype("<u8")

Packed = npt.NDArray[np.uint64]


def check_dim(dim: object) -> int:
    """Validate a hypervector dimension: an int in [8192, 100352] and a multiple of 64."""
    d = check_int("dim", dim, low=MIN_DIM, high=MAX_DIM)
    if d % WORD_BITS:
        raise InvalidInputError(f"dim must be a multiple of 64, got {d}")
    return d


def _key_bytes(key: str | bytes) -> bytes:
    if isinstance(key, str):
        return key.encode("utf-8")
    if isinstance(key, bytes):
        return key
    raise InvalidInputError(f"key must be str or bytes, got {type(key).__name__}")


def base_vector(key: str | bytes, dim: int = DEFAULT_DIM, *, namespace: str = "hbt") -> Packed:
    """The random base hypervector of ``key``: BLAKE2b in counter mode, independent of process."""
    d = check_dim(dim)
    material = _key_bytes(key)
    person = namespace.encode("utf-8")[:16]
    n_bytes = d // 8
    blocks = []
    for counter in range((n_bytes + 63) // 64):
        h = hashlib.blake2b(digest_size=64, person=person)
        h.update(len(material).to_bytes(8, "little"))
        h.update(material)
        h.update(counter.to_bytes(8, "little"))
        blocks.append(h.digest())
    raw = b"".join(blocks)[:n_bytes]
    return np.frombuffer(raw, dtype=WORD_DTYPE).astype(np.uint64)


def dim_of(hv: Packed) -> int:
    """The dimension in bits of a packed hypervector (last axis)."""
    return int(hv.shape[-1]) * WORD_BITS


def _check_same(a: Packed, b: Packed) -> None:
    if a.shape[-1] != b.shape[-1]:
        raise DimensionMismatchError(f"hypervector dims differ: {dim_of(a)} vs {dim_of(b)} bits")


def bind(a: Packed, b: Packed) -> Packed:
    """Binding is XOR: self-inverse and distance-preserving."""
    _check_same(a, b)
    return np.bitwise_xor(a, b)


def unpack(hv: Packed) -> npt.NDArray[np.uint8]:
    """Packed words to a 0/1 ``uint8`` bit array (bit ``i`` of word ``w`` is index ``64w+i``)."""
    arr = np.ascontiguousarray(hv, dtype=WORD_DTYPE)
    return np.unpackbits(arr.view(np.uint8), axis=-1, bitorder="little")


def pack(bits: npt.ArrayLike) -> Packed:
    """A 0/1 bit array (length a multiple of 64 on the last axis) to packed ``uint64`` words."""
    b = np.asarray(bits)
    if b.shape[-1] % WORD_BITS:
        raise InvalidInputError(f"bit length must be a multiple of 64, got {b.shape[-1]}")
    packed = np.packbits(b.astype(np.uint8, copy=False), axis=-1, bitorder="little")
    return np.ascontiguousarray(packed).view(WORD_DTYPE).astype(np.uint64)


def permute(hv: Packed, shift: int = 1) -> Packed:
    """Permutation is a cyclic rotation of the ``D`` bits by ``shift`` positions."""
    return pack(np.roll(unpack(hv), check_int("shift", shift), axis=-1))


def hamming(a: Packed, b: Packed) -> int:
    """Number of differing bits between two hypervectors."""
    _check_same(a, b)
    return int(np.bitwise_count(np.bitwise_xor(a, b)).sum())


_BLOCK_ROWS = 1024
_PARALLEL_ROWS = 16_384


def _hamming_block(query: Packed, matrix: Packed, out: npt.NDArray[np.int64]) -> None:
    """XOR + popcount in cache-sized blocks with reusable buffers (memory traffic dominates)."""
    words = matrix.shape[1]
    acc_dtype = np.uint16 if words * WORD_BITS < (1 << 16) else np.uint32
    buf = np.empty((_BLOCK_ROWS, words), dtype=np.uint64)
    cnt = np.empty((_BLOCK_ROWS, words), dtype=np.uint8)
    for start in range(0, matrix.shape[0], _BLOCK_ROWS):
        stop = min(start + _BLOCK_ROWS, matrix.shape[0])
        k = stop - start
        np.bitwise_xor(matrix[start:stop], query, out=buf[:k])
        np.bitwise_count(buf[:k], out=cnt[:k])
        out[start:stop] = cnt[:k].sum(axis=1, dtype=acc_dtype)


def hamming_many(
    query: Packed, matrix: Packed, threads: int | None = None
) -> npt.NDArray[np.int64]:
    """Hamming distances from one query to each row of ``matrix`` (1-vs-N, popcount per word).

    Large matrices are split across ``threads`` (default: up to 2 cores; numpy releases the GIL).
    """
    _check_same(query, matrix)
    m = np.ascontiguousarray(matrix, dtype=np.uint64)
    q = np.ascontiguousarray(query, dtype=np.uint64)
    if m.ndim == 1:
        return np.bitwise_count(np.bitwise_xor(m, q)).sum(dtype=np.int64)
    flat = m.reshape(-1, m.shape[-1])
    out = np.empty(flat.shape[0], dtype=np.int64)
    n_threads = threads or (min(2, os.cpu_count() or 1) if flat.shape[0] >= _PARALLEL_ROWS else 1)
    if n_threads <= 1:
        _hamming_block(q, flat, out)
    else:
        bounds = np.linspace(0, flat.shape[0], n_threads + 1).astype(int)
        with ThreadPoolExecutor(max_workers=n_threads) as pool:
            list(
                pool.map(
                    lambda ab: _hamming_block(q, flat[ab[0] : ab[1]], out[ab[0] : ab[1]]),
                    itertools.pairwise(bounds),
                )
            )
    return out.reshape(m.shape[:-1])


def similarity(a: Packed, b: Packed) -> float:
    """Normalised Hamming similarity in [0, 1]; 0.5 is the similarity of unrelated vectors."""
    return 1.0 - hamming(a, b) / dim_of(a)


def similarity_many(query: Packed, matrix: Packed) -> npt.NDArray[np.float64]:
    """Normalised Hamming similarity from one query to each row of ``matrix``."""
    return 1.0 - hamming_many(query, matrix) / dim_of(query)


def hamming_many_numba(query: Packed, matrix: Packed) -> npt.NDArray[np.int64]:
    """The same 1-vs-N distances through a numba-compiled loop (needs the ``numba`` extra)."""
    _check_same(query, matrix)
    kernel = _numba_kernel()
    result: npt.NDArray[np.int64] = kernel(  # type: ignore[operator]
        np.ascontiguousarray(query), np.ascontiguousarray(matrix)
    )
    return result


_NUMBA_KERNEL: object | None = None


def _numba_kernel() -> object:
    global _NUMBA_KERNEL
    if _NUMBA_KERNEL is None:
        import numba  # lazy: optional extra

        @numba.njit(cache=False, parallel=True)
        def kernel(q: Packed, m: Packed) -> npt.NDArray[np.int64]:
            out = np.empty(m.shape[0], dtype=np.int64)
            for i in numba.prange(m.shape[0]):
                acc = 0
                for w in range(m.shape[1]):
                    x = m[i, w] ^ q[w]
                    acc += int(_popcount64(x))
                out[i] = acc
            return out

        @numba.njit(inline="always")
        def _popcount64(x: np.uint64) -> np.uint64:
            x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
            x = (x & np.uint64(0x3333333333333333)) + (
                (x >> np.uint64(2)) & np.uint64(0x3333333333333333)
            )
            x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
            return (x * np.uint64(0x0101010101010101)) >> np.uint64(56)

        _NUMBA_KERNEL = kernel
    return _NUMBA_KERNEL


class Accumulator:
    """Per-bit counters of a bundle: ``counts[i]`` = total weight of members with bit ``i`` set.

    Sums are exact for integer weights (any order, any sharding, then :meth:`merge`). Float
    weights (exponential decay) are supported with ``float64`` counters.
    """

    def __init__(
        self,
        dim: int = DEFAULT_DIM,
        *,
        dtype: npt.DTypeLike = np.int64,
        tie_seed: str = "tie-break",
    ) -> None:
        self.dim = check_dim(dim)
        self.dtype = np.dtype(dtype)
        if self.dtype.kind not in "if":
            raise InvalidInputError(f"dtype must be an integer or float dtype, got {self.dtype}")
        self.counts = np.zeros(self.dim, dtype=self.dtype)
        self.total: float = 0
        self.tie_seed = tie_seed

    @classmethod
    def from_counts(
        cls, counts: npt.ArrayLike, total: float, *, tie_seed: str = "tie-break"
    ) -> Accumulator:
        """Rebuild an accumulator from its counters (e.g. shared by a federated party)."""
        arr = np.asarray(counts)
        if arr.ndim != 1:
            raise InvalidInputError(f"counts must be 1-D, got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise InvalidInputError("counts must be finite")
        acc = cls(
            arr.shape[0], dtype=arr.dtype if arr.dtype.kind in "if" else np.int64, tie_seed=tie_seed
        )
        acc.counts = arr.astype(acc.dtype, copy=True)
        acc.total = check_finite_number("total", total)
        return acc

    def copy(self) -> Accumulator:
        return Accumulator.from_counts(self.counts, float(self.total), tie_seed=self.tie_seed)

    def add(self, hv: Packed, weight: float = 1) -> None:
        """Add one packed hypervector with ``weight``."""
        if dim_of(hv) != self.dim:
            raise DimensionMismatchError(
                f"hypervector has {dim_of(hv)} bits, bundle has {self.dim}"
            )
        w = self._check_weights(np.asarray([weight]))[0]
        self.counts += unpack(hv).astype(self.dtype) * w
        self.total += w

    def _check_weights(self, weights: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Weights as this accumulator's dtype, refusing NaN/inf and (for integer counters)
        fractions, which a cast would silently truncate to a different bundle."""
        if weights.dtype.kind not in "iuf":
            raise InvalidInputError(f"weights must be numbers, got dtype {weights.dtype}")
        if not np.all(np.isfinite(weights)):
            raise InvalidInputError("weights must be finite (no NaN or inf)")
        whole = np.all(weights == np.rint(weights)) and not np.any(np.abs(weights) >= 2**53)
        if self.dtype.kind == "i" and weights.dtype.kind == "f" and not whole:
            raise InvalidInputError(
                "weights must be whole numbers below 2**53 for integer counters; "
                "Accumulator(dtype=np.float64) takes fractional or larger weights"
            )
        return weights.astype(self.dtype)

    def add_many(self, matrix: Packed, weights: npt.ArrayLike | None = None) -> None:
        """Add each row of a packed matrix (optionally weighted) in one vectorised step."""
        m = np.atleast_2d(matrix)
        if dim_of(m) != self.dim:
            raise DimensionMismatchError(
                f"hypervectors have {dim_of(m)} bits, bundle has {self.dim}"
            )
        if m.shape[0] == 0:
            return
        bits = unpack(m)
        if weights is None:
            self.counts += bits.sum(axis=0, dtype=self.dtype)
            self.total += m.shape[0]
            return
        w = self._check_weights(np.asarray(weights))
        if w.shape != (m.shape[0],):
            raise InvalidInputError(f"weights must have shape ({m.shape[0]},), got {w.shape}")
        if self.dtype.kind == "i" and len(levels := np.unique(w)) <= 32:
            # few distinct integer weights: exact grouped sums, no integer matmul
            for level in levels:
                self.counts += bits[w == level].sum(axis=0, dtype=self.dtype) * level
        elif self.dtype.kind == "i":
            # float64 BLAS is exact for integer sums below 2**53
            self.counts += np.rint(w.astype(np.float64) @ bits.astype(np.float64)).astype(
                self.dtype
            )
        else:
            self.counts += w @ bits.astype(self.dtype)
        self.total += float(w.sum())

    def merge(self, other: Accumulator) -> None:
        """Add another accumulator's counters (the reduce step of sharded bundling)."""
        if other.dim != self.dim:
            raise DimensionMismatchError(f"bundle dims differ: {self.dim} vs {other.dim}")
        self.counts += other.counts.astype(self.dtype)
        self.total += other.total

    def scale(self, factor: float) -> None:
        """Multiply every counter and the total weight (exponential forgetting)."""
        factor = check_finite_number("factor", factor)
        self.counts = self.counts * factor
        self.total = self.total * factor

    def threshold(self) -> Packed:
        """Majority vote per bit; exact ties take the bit of the seeded tie-break vector."""
        twice = self.counts * 2
        ones = twice > self.total
        ties = twice == self.total
        if np.any(ties):
            tie_bits = unpack(base_vector(self.tie_seed, self.dim, namespace="hbt-tie")).astype(
                bool
            )
            ones = ones | (ties & tie_bits)
        return pack(ones)


def bundle(
    vectors: Sequence[Packed] | Packed,
    weights: Iterable[float] | None = None,
    *,
    dim: int | None = None,
) -> Packed:
    """Majority bundle of hypervectors (counter-based, order-independent).

    Whole-number weights (below 2**53) bundle with exact integer counters; fractional or larger
    weights with float64 counters (never truncated). NaN/inf weights raise :class:`InvalidInputError`.
    """
    m = np.atleast_2d(np.asarray(vectors, dtype=np.uint64))
    if weights is None:
        acc = Accumulator(dim or dim_of(m))
        acc.add_many(m)
        return acc.threshold()
    try:
        w = np.asarray(list(weights), dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError("weights must be a sequence of numbers") from None
    integral = bool(np.all(np.isfinite(w))) and bool(np.all(w == np.rint(w)))
    integral = integral and not bool(np.any(np.abs(w) >= 2**53))  # int64 sums exact below it
    acc = Accumulator(dim or dim_of(m), dtype=np.int64 if integral else np.float64)
    acc.add_many(m, w)
    return acc.threshold()
