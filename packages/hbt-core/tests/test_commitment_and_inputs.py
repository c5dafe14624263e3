"""Regression tests: the signature commits to everything it uses, bundling never truncates or
zeroes weights, edge streaming keeps its total, and encoder configs are validated up front."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hbt_core.edge import export_edge, load_edge
from hbt_core.errors import IntegrityError, InvalidInputError, ModelFormatError
from hbt_core.hdc import Accumulator, base_vector, bundle, similarity
from hbt_core.signature import EncoderConfig, Signature


def _rewrite(path: Path, edit: dict[str, object]) -> None:
    """Rewrite a saved signature with some arrays or meta keys replaced (as an attacker would)."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(bytes(arrays["meta"]).decode())
    for key, value in edit.items():
        if key in arrays and key != "meta":
            arrays[key] = value  # type: ignore[assignment]
        else:
            meta[key] = value
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())


@pytest.mark.parametrize(
    "field",
    ["counts", "total", "config", "model_name", "run_seed"],
)
def test_every_used_field_is_committed(reference: Signature, tmp_path: Path, field: str) -> None:
    path = tmp_path / "sig.npz"
    reference.save(path)
    edits: dict[str, dict[str, object]] = {
        "counts": {"counts": np.zeros_like(reference.counts)},
        "total": {"total": reference.total + 1},
        "config": {"config": {**reference.config.to_json(), "top_k": 4}},
        "model_name": {"model_name": "someone-else"},
        "run_seed": {"run_seed": reference.run_seed + 1},
    }
    _rewrite(path, edits[field])
    with pytest.raises(IntegrityError, match="Merkle root"):
        Signature.load(path)


def test_old_format_and_bad_arrays_are_refused(reference: Signature, tmp_path: Path) -> None:
    path = tmp_path / "sig.npz"
    reference.save(path)
    assert Signature.load(path).root == reference.root
    _rewrite(path, {"format": 1})
    with pytest.raises(ModelFormatError, match="format 1"):
        Signature.load(path)
    reference.save(path)
    with np.load(path) as z:
        meta = json.loads(bytes(z["meta"]).decode())
    del meta["format"]  # a file written before the format was versioned
    _rewrite(path, {})
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path.with_suffix(""), **arrays)  # writes sig.npz
    with pytest.raises(ModelFormatError, match="format 1"):
        Signature.load(path)
    reference.save(path)
    _rewrite(path, {"counts": reference.counts.astype(np.float64) + 0.5})
    with pytest.raises(ModelFormatError, match="counts"):
        Signature.load(path)
    reference.save(path)
    _rewrite(path, {"total": -1})
    with pytest.raises(ModelFormatError, match="total"):
        Signature.load(path)


def test_signature_refuses_nan_variances(reference: Signature) -> None:
    bad = reference.variances.copy()
    bad[0] = np.nan
    with pytest.raises(InvalidInputError, match="variances"):
        Signature(
            reference.config,
            reference.probe_ids,
            reference.leaves,
            bad,
            reference.counts,
            reference.total,
        )


@pytest.mark.parametrize(
    ("field", "value"),
    [("top_k", 0), ("quantum", -5), ("positions", 0), ("ngram", 9), ("top_k", 1.5)],
)
def test_encoder_config_rejects_out_of_range_values(field: str, value: object) -> None:
    with pytest.raises(InvalidInputError, match=f"EncoderConfig.{field}"):
        EncoderConfig(**{field: value})  # type: ignore[arg-type]


def test_bundle_keeps_fractional_weights() -> None:
    dim = 8192
    a, b = base_vector("a", dim), base_vector("b", dim)
    # 0.7 vs 0.3: the majority must be a (a cast to int made both weights 0 -> tie-break vector)
    assert np.array_equal(bundle([a, b], [0.7, 0.3]), a)
    assert np.array_equal(bundle([a, b], [0.3, 0.7]), b)
    # whole-number weights stay exact integer bundles
    assert np.array_equal(bundle([a, b, b], [3, 1, 1]), a)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_bundle_and_accumulator_refuse_non_finite_weights(bad: float) -> None:
    dim = 8192
    a, b = base_vector("a", dim), base_vector("b", dim)
    with pytest.raises(InvalidInputError, match="finite"):
        bundle([a, b], [1.0, bad])
    acc = Accumulator(dim)
    with pytest.raises(InvalidInputError, match="finite"):
        acc.add(a, bad)
    with pytest.raises(InvalidInputError, match="finite"):
        acc.add_many(np.stack([a, b]), [1, bad])
    with pytest.raises(InvalidInputError, match="factor"):
        acc.scale(bad)
    with pytest.raises(InvalidInputError, match="total"):
        Accumulator.from_counts(np.zeros(dim, dtype=np.int64), bad)
    assert acc.total == 0  # nothing was half-applied
    assert not acc.counts.any()


def test_integer_accumulator_refuses_fractional_weights() -> None:
    dim = 8192
    acc = Accumulator(dim)
    with pytest.raises(InvalidInputError, match="whole numbers"):
        acc.add(base_vector("a", dim), 0.5)
    with pytest.raises(InvalidInputError, match="whole numbers"):
        acc.add_many(np.stack([base_vector("a", dim)] * 2), [1.0, 0.5])
    acc.add_many(np.stack([base_vector("a", dim)] * 2), [2.0, 1.0])
    assert acc.total == 3
    fl = Accumulator(dim, dtype=np.float64)
    fl.add(base_vector("a", dim), 0.5)
    assert fl.total == 0.5


def test_streaming_edge_package_keeps_its_total(
    reference: Signature, signing_key: Ed25519PrivateKey
) -> None:
    pkg = load_edge(export_edge(reference, signing_key, "streaming"), signing_key.public_key())
    assert pkg.total == reference.total
    acc = pkg.accumulator()
    assert np.array_equal(acc.threshold(), reference.bundled())
    assert similarity(acc.threshold(), reference.bundled()) == 1.0
    balanced = load_edge(export_edge(reference, signing_key, "balanced"), signing_key.public_key())
    assert balanced.total is None
    with pytest.raises(InvalidInputError, match="no bundle counters"):
        balanced.accumulator()
