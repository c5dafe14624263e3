"""Edge packages: size per level, deterministic bytes, tamper rejection, minimal still separates."""

from __future__ import annotations

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hbt_core.edge import LEVELS, SIZE_LIMITS, export_edge, load_edge
from hbt_core.errors import EdgeFormatError, InvalidInputError
from hbt_core.signature import Signature, build_signature


@pytest.mark.parametrize("compression", ["zlib", "lz4", "zstd"])
@pytest.mark.parametrize("level", sorted(LEVELS))
def test_roundtrip_sizes_and_determinism(
    reference: Signature, signing_key: Ed25519PrivateKey, level: str, compression: str
) -> None:
    data = export_edge(reference, signing_key, level, compression)
    assert len(data) <= SIZE_LIMITS[level]
    assert data == export_edge(reference, signing_key, level, compression)
    pkg = load_edge(data, signing_key.public_key())
    assert pkg.root == reference.root
    assert pkg.level == level
    assert np.array_equal(pkg.sketch, reference.bundled()[: pkg.sketch.shape[0]])
    if pkg.leaves is not None:
        assert np.all(pkg.leaf_similarities(reference) == 1.0)
    if level == "streaming":
        assert pkg.counters is not None
        assert np.array_equal(pkg.counters, reference.counts)


def test_every_single_byte_flip_is_rejected(
    reference: Signature, signing_key: Ed25519PrivateKey
) -> None:
    data = export_edge(reference, signing_key, "minimal")
    pub = signing_key.public_key()
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x40
        with pytest.raises(EdgeFormatError):
            load_edge(bytes(bad), pub)
    for cut in (0, 10, len(data) - 1):
        with pytest.raises(EdgeFormatError):
            load_edge(data[:cut], pub)
    with pytest.raises(EdgeFormatError):
        load_edge(data, Ed25519PrivateKey.generate().public_key())
    with pytest.raises(EdgeFormatError):
        load_edge("text", pub)  # type: ignore[arg-type]


def test_signed_but_inconsistent_payload_is_rejected(
    reference: Signature, signing_key: Ed25519PrivateKey
) -> None:
    import struct
    import zlib

    from hbt_core import edge

    body = edge._HEADER.pack(
        edge.MAGIC, 1, 1, 1, reference.dim, 16, 4096, 0, b"\0" * 32, b"\0" * 32, 0
    )
    payload = zlib.compress(b"\0" * 10)
    body = body[:-4] + struct.pack("<I", len(payload)) + payload
    with pytest.raises(EdgeFormatError, match="payload"):
        load_edge(body + signing_key.sign(body), signing_key.public_key())


def test_bad_levels_and_compressions(reference: Signature, signing_key: Ed25519PrivateKey) -> None:
    with pytest.raises(InvalidInputError, match="optimization_level"):
        export_edge(reference, signing_key, "tiny")
    with pytest.raises(InvalidInputError, match="compression"):
        export_edge(reference, signing_key, "minimal", "bz2")


def test_minimal_separates_base_from_other_models(
    models: dict,
    probes: list,
    config: object,
    reference: Signature,
    null_runs: list[Signature],
    signing_key: Ed25519PrivateKey,
) -> None:
    pkg = load_edge(export_edge(reference, signing_key, "minimal"), signing_key.public_key())
    same = [pkg.similarity(s) for s in null_runs]
    others = [
        pkg.similarity(build_signature(models[n], probes, config, run_seed=1))
        for n in ("seed1", "arch")
    ]
    assert min(same) > max(others)


def test_too_many_probes_for_a_level_is_a_typed_error(signing_key: Ed25519PrivateKey) -> None:
    from hbt_core.signature import EncoderConfig

    n = 2000
    rng = np.random.default_rng(0)
    sig = Signature(
        EncoderConfig(),
        tuple(f"p{i}" for i in range(n)),
        rng.integers(0, 2**63, size=(n, 256), dtype=np.uint64),
        np.full(n, 0.1),
        np.zeros(16384, dtype=np.int64),
        n,
    )
    with pytest.raises(InvalidInputError, match="balanced"):
        export_edge(sig, signing_key, "balanced")
    assert len(export_edge(sig, signing_key, "minimal")) <= 1024
