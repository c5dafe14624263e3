"""Signatures, commitments, calibrated verification and the sequential test on real fixtures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hbt_core.challenges import generate_probes, perturb
from hbt_core.errors import IntegrityError, InvalidInputError, ModelFormatError
from hbt_core.models import CallableTextModel
from hbt_core.signature import EncoderConfig, Signature, build_signature
from hbt_core.verification import Calibration, auroc, per_probe_similarity, sprt, verify


def test_signature_shape_variance_and_commitment(reference: Signature, tmp_path: Path) -> None:
    assert reference.leaves.shape == (16, 256)
    assert np.all(reference.variances > 0)  # a real spread across >= 2 samples
    reference.verify_commitment()
    path = tmp_path / "sig.npz"
    reference.save(path)
    loaded = Signature.load(path)
    assert loaded.root == reference.root
    assert np.array_equal(loaded.leaves, reference.leaves)
    leaves = reference.leaves.copy()
    leaves[3, 0] ^= np.uint64(1)
    forged = Signature(
        reference.config,
        reference.probe_ids,
        leaves,
        reference.variances,
        reference.counts,
        reference.total,
        root=reference.root,
    )
    with pytest.raises(IntegrityError):
        forged.verify_commitment()
    path.write_bytes(b"garbage")
    with pytest.raises(ModelFormatError):
        Signature.load(path)


def test_signature_is_deterministic(
    models: dict, probes: list, config: EncoderConfig, reference: Signature
) -> None:
    again = build_signature(models["base"], probes, config, run_seed=0)
    assert again.root == reference.root


def test_verification_accepts_same_and_rejects_other(
    models: dict,
    probes: list,
    config: EncoderConfig,
    reference: Signature,
    calibration: Calibration,
) -> None:
    same = verify(reference, build_signature(models["base"], probes, config, 7), calibration)
    assert same.same_model
    assert same.sequential.decision != "different"
    for name in ("seed1", "arch", "int4"):
        other = verify(reference, build_signature(models[name], probes, config, 7), calibration)
        assert not other.same_model, name
        assert other.sequential.decision == "different", name
        assert other.similarity < same.similarity


def test_text_mode_separates_a_different_generator(models: dict, probes: list) -> None:
    """Black-box mode on generated text; its power on the fixture family is in the benchmark."""
    cfg = EncoderConfig(mode="text", n_samples=3, gen_tokens=16)
    ps = probes[:6]

    def shouting(prompt: bytes, n: int, seed: int) -> bytes:
        rng = np.random.default_rng(seed)
        return bytes(rng.choice(list(b"ABCDEFGHIJ !"), size=n))

    ref = build_signature(models["base"], ps, cfg, 0)
    same = per_probe_similarity(ref, build_signature(models["base"], ps, cfg, 1)).mean()
    other = per_probe_similarity(ref, build_signature(CallableTextModel(shouting), ps, cfg, 1))
    assert same > other.mean() + 0.05


@settings(max_examples=30, deadline=None)
@given(st.floats(0.6, 0.99), st.floats(0.05, 0.5), st.integers(0, 1000))
def test_sprt_error_rates_hold(p0: float, gap: float, seed: int) -> None:
    p1 = max(0.01, p0 - gap)
    rng = np.random.default_rng(seed)
    decisions = [sprt(rng.random(400) < p0, p0, p1, 0.05, 0.05).decision for _ in range(40)]
    assert decisions.count("different") <= 8  # alpha = 0.05 -> expect ~2 of 40


def test_bad_inputs(reference: Signature) -> None:
    with pytest.raises(InvalidInputError):
        EncoderConfig(mode="audio")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        EncoderConfig(n_samples=1)
    with pytest.raises(InvalidInputError):
        sprt([True], 0.5, 0.9)
    with pytest.raises(InvalidInputError):
        sprt([True], float("nan"), 0.1)
    with pytest.raises(InvalidInputError):
        Calibration.from_null(reference, [reference])
    with pytest.raises(InvalidInputError):
        auroc([], [1.0])
    with pytest.raises(InvalidInputError):
        generate_probes(0)
    with pytest.raises(InvalidInputError):
        generate_probes(3, domains=["nope"])
    assert len(perturb(generate_probes(1)[0], 4, 0)) == 4
    assert auroc([2, 3], [1, 0]) == 1.0
    assert auroc([1], [1]) == 0.5
