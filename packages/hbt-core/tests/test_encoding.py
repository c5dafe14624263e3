"""Encoders preserve similarity: small distribution changes move few bits, large ones many."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hbt_core.encoding import LogitEncoder, TextEncoder
from hbt_core.errors import InvalidInputError
from hbt_core.hdc import Accumulator, similarity


def _hv(enc: LogitEncoder, probs: np.ndarray) -> np.ndarray:
    counts, total = enc.counts(probs)
    return Accumulator.from_counts(counts, total).threshold()


def _dist(rng: np.random.Generator, positions: int = 8) -> np.ndarray:
    logits = rng.normal(0, 3, size=(positions, 256))
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.001, 0.02))
def test_logit_encoding_is_similarity_preserving(seed: int, eps: float) -> None:
    rng = np.random.default_rng(seed)
    enc = LogitEncoder()
    p = _dist(rng)
    small = (1 - eps) * p + eps * _dist(rng)
    large = _dist(rng)
    s_small = similarity(_hv(enc, p), _hv(enc, small))
    s_large = similarity(_hv(enc, p), _hv(enc, large))
    assert s_small > 0.9
    assert s_small > s_large + 0.1


def test_logit_encoding_is_deterministic_and_weighted() -> None:
    rng = np.random.default_rng(0)
    enc = LogitEncoder()
    p = _dist(rng)
    assert np.array_equal(_hv(enc, p), _hv(enc, p.copy()))
    ids, w = enc.weights(p)
    assert np.all(np.diff(w, axis=1) <= 0)  # higher rank and probability weigh more
    assert ids.shape == (8, 8)


@settings(max_examples=20, deadline=None)
@given(st.binary(min_size=30, max_size=80), st.integers(0, 29))
def test_text_encoding_one_byte_change_keeps_similarity(text: bytes, pos: int) -> None:
    enc = TextEncoder()
    changed = bytearray(text)
    changed[pos] ^= 0x55
    a = Accumulator.from_counts(*enc.counts(text)).threshold()
    b = Accumulator.from_counts(*enc.counts(bytes(changed))).threshold()
    assert similarity(a, b) > 0.7


def test_bad_inputs() -> None:
    enc = LogitEncoder()
    for bad in (np.zeros((8, 4)), np.full((2, 256), np.nan), -np.ones((2, 256)), np.zeros(256)):
        with pytest.raises(InvalidInputError):
            enc.counts(bad)
    with pytest.raises(InvalidInputError):
        TextEncoder().counts("text")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        LogitEncoder(top_k=0)
    counts, total = TextEncoder().counts(b"ab")
    assert total == 0
    assert not counts.any()


def test_logit_mode_accepts_a_larger_vocabulary_and_agrees_with_bytes_below_256() -> None:
    """BPE models have more than 256 ids; ids below 256 keep the byte tokens' base vectors."""
    enc = LogitEncoder(dim=8192, top_k=4, positions=3)
    rng = np.random.default_rng(7)
    small = rng.dirichlet(np.ones(256), size=3)
    padded = np.concatenate([small, np.zeros((3, 256))], axis=1)  # same mass, vocab 512
    assert np.array_equal(enc.counts(small)[0], enc.counts(padded)[0])

    big = rng.dirichlet(np.ones(512), size=3)
    counts, total = enc.counts(big)
    assert counts.shape == (8192,)
    assert total > 0
    near = big.copy()
    near[:, 0] += 1e-4
    near /= near.sum(axis=1, keepdims=True)
    assert np.abs(enc.counts(near)[0] - counts).sum() <= np.abs(counts).sum() * 0.05
