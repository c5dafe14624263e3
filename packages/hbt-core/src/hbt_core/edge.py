"""Edge export: a versioned, signed, compressed binary format for signatures (never pickle).

Layout (little-endian)::

    magic "HBTE" | u16 version | u8 level | u8 compression | u32 dim | u32 n_probes
    | u32 sketch_bits | u32 leaf_bits | 32 B probe-set digest | 32 B Merkle root
    | u32 payload length | payload (compressed) | 64 B Ed25519 signature over all prior bytes

The payload holds the first ``sketch_bits`` bits of the bundled signature, the first
``leaf_bits`` bits of every probe leaf, per-probe variances as float16 and, at level
``streaming``, the bundle total (u32) and counters (uint16) so a device can continue
incremental updates (counters without their total cannot be thresholded).
Base vectors are i.i.d. random bits, so a fixed prefix of bit positions is an unbiased
subsample and similarities computed on it estimate the full ones. Bytes are deterministic:
no timestamps, fixed compression settings, and Ed25519 signatures are deterministic.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hbt_core.errors import EdgeFormatError, InvalidInputError
from hbt_core.hdc import Accumulator, Packed, similarity_many
from hbt_core.signature import Signature

MAGIC = b"HBTE"
VERSION = 1
LEVELS = {"minimal": 1, "balanced": 2, "full": 3, "streaming": 4}
SIZE_LIMITS = {"minimal": 1024, "balanced": 10 * 1024, "full": 100 * 1024, "streaming": 100 * 1024}
COMPRESSIONS = {"zlib": 1, "lz4": 2, "zstd": 3}
_HEADER = struct.Struct("<4sHBBIIII32s32sI")
_SIG = 64
_MARGIN = 96  # room for compression framing on incompressible random bits


def probes_digest(probe_ids: tuple[str, ...]) -> bytes:
    return hashlib.blake2b("\n".join(probe_ids).encode(), digest_size=32).digest()


def _compress(data: bytes, method: str) -> bytes:
    if method == "zlib":
        return zlib.compress(data, 9)
    if method == "lz4":
        import lz4.frame  # lazy: compression extra

        return bytes(lz4.frame.compress(data, compression_level=9))
    if method == "zstd":
        import zstandard  # lazy: compression extra

        return bytes(zstandard.ZstdCompressor(level=19).compress(data))
    raise InvalidInputError(f"compression must be one of {sorted(COMPRESSIONS)}, got {method!r}")


def _decompress(data: bytes, method: str, limit: int) -> bytes:
    try:
        if method == "zlib":
            d = zlib.decompressobj()
            out = d.decompress(data, limit + 1)
        elif method == "lz4":
            import lz4.frame

            out = lz4.frame.LZ4FrameDecompressor().decompress(data, max_length=limit + 1)
        else:
            import zstandard

            out = zstandard.ZstdDecompressor().decompress(data, max_output_size=limit + 1)
    except Exception as exc:
        raise EdgeFormatError(f"payload does not decompress with {method}: {exc}") from None
    if len(out) > limit:
        raise EdgeFormatError(f"payload decompresses beyond the expected {limit} bytes")
    return bytes(out)


@dataclass(frozen=True)
class EdgePackage:
    """A loaded and verified edge package."""

    level: str
    compression: str
    dim: int
    n_probes: int
    sketch: Packed
    leaves: Packed | None
    variances: npt.NDArray[np.float16] | None
    counters: npt.NDArray[np.uint16] | None
    probes_digest: bytes
    root: bytes
    total: int | None = None  # bundle total weight, carried with ``counters`` (streaming)

    def similarity(self, signature: Signature) -> float:
        """Similarity of a fresh full signature's bundle to this sketch (same bit prefix)."""
        words = self.sketch.shape[0]
        return float(similarity_many(self.sketch, signature.bundled()[None, :words])[0])

    def accumulator(self) -> Accumulator:
        """The streaming bundle (counters and total) to continue incremental updates on."""
        if self.counters is None or self.total is None:
            raise InvalidInputError(f"level {self.level!r} carries no bundle counters")
        return Accumulator.from_counts(self.counters.astype(np.int64), self.total)

    def leaf_similarities(self, signature: Signature) -> npt.NDArray[np.float64]:
        if self.leaves is None:
            raise InvalidInputError(f"level {self.level!r} carries no per-probe leaves")
        if probes_digest(signature.probe_ids) != self.probes_digest:
            raise InvalidInputError("signature was built on a different probe set")
        words = self.leaves.shape[1]
        diff = np.bitwise_count(self.leaves ^ signature.leaves[:, :words]).sum(axis=1)
        return 1.0 - diff / (words * 64)


def _plan(signature: Signature, level: str) -> tuple[int, int]:
    """(sketch_bits, leaf_bits) for a level so that the package fits its size limit."""
    dim, n = signature.dim, len(signature.probe_ids)
    fixed = _HEADER.size + _SIG + _MARGIN
    if level == "minimal":
        return min(4096, dim), 0
    if level == "streaming":
        return dim, 0
    budget = SIZE_LIMITS[level] - fixed - dim // 8 - 2 * n
    leaf_bits = min(dim, (budget * 8 // max(n, 1)) // 64 * 64)
    if leaf_bits < 64:
        raise InvalidInputError(f"{n} probes do not fit level {level!r}; use 'minimal'")
    return dim, leaf_bits


def export_edge(
    signature: Signature, key: Ed25519PrivateKey, level: str = "balanced", compression: str = "zlib"
) -> bytes:
    """Serialise, compress and sign a signature for edge devices."""
    if level not in LEVELS:
        raise InvalidInputError(
            f"optimization_level must be one of {sorted(LEVELS)}, got {level!r}"
        )
    if compression not in COMPRESSIONS:
        raise InvalidInputError(
            f"compression must be one of {sorted(COMPRESSIONS)}, got {compression!r}"
        )
    sketch_bits, leaf_bits = _plan(signature, level)
    parts = [signature.bundled()[: sketch_bits // 64].astype("<u8").tobytes()]
    if leaf_bits:
        parts.append(
            np.ascontiguousarray(signature.leaves[:, : leaf_bits // 64]).astype("<u8").tobytes()
        )
        parts.append(signature.variances.astype("<f2").tobytes())
    if level == "streaming":
        if (
            signature.counts.max(initial=0) > 0xFFFF
            or signature.counts.min(initial=0) < 0
            or signature.total > 0xFFFF
        ):
            raise InvalidInputError(
                "counters exceed uint16; streaming export needs <= 65535 members"
            )
        parts.append(struct.pack("<I", signature.total))
        parts.append(signature.counts.astype("<u2").tobytes())
    payload = _compress(b"".join(parts), compression)
    header = _HEADER.pack(
        MAGIC,
        VERSION,
        LEVELS[level],
        COMPRESSIONS[compression],
        signature.dim,
        len(signature.probe_ids),
        sketch_bits,
        leaf_bits,
        probes_digest(signature.probe_ids),
        signature.root,
        len(payload),
    )
    body = header + payload
    package = body + key.sign(body)
    if len(package) > SIZE_LIMITS[level]:
        raise InvalidInputError(
            f"package is {len(package)} bytes, over the {level!r} limit {SIZE_LIMITS[level]}"
        )
    return package


def load_edge(data: bytes, public_key: Ed25519PublicKey) -> EdgePackage:
    """Parse and verify an edge package; any tampering raises :class:`EdgeFormatError`."""
    if not isinstance(data, (bytes, bytearray)):
        raise EdgeFormatError(f"edge package must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < _HEADER.size + _SIG:
        raise EdgeFormatError(f"edge package is truncated ({len(data)} bytes)")
    if data[:4] != MAGIC:
        raise EdgeFormatError("edge package has a bad magic number")
    body, sig = data[:-_SIG], data[-_SIG:]
    try:
        public_key.verify(sig, body)
    except InvalidSignature:
        raise EdgeFormatError(
            "edge package signature does not verify (tampered or wrong key)"
        ) from None
    (_, version, level_code, comp_code, dim, n, sketch_bits, leaf_bits, digest, root, plen) = (
        _HEADER.unpack_from(body)
    )
    if version != VERSION:
        raise EdgeFormatError(f"edge package version {version} is not supported (expected 1)")
    levels = {v: k for k, v in LEVELS.items()}
    comps = {v: k for k, v in COMPRESSIONS.items()}
    if level_code not in levels or comp_code not in comps:
        raise EdgeFormatError(f"unknown level {level_code} or compression {comp_code}")
    if plen != len(body) - _HEADER.size or sketch_bits % 64 or leaf_bits % 64 or sketch_bits > dim:
        raise EdgeFormatError("edge package header is inconsistent with its contents")
    level = levels[level_code]
    expected = sketch_bits // 8 + n * (leaf_bits // 8 + 2 if leaf_bits else 0)
    if level == "streaming":
        expected += 4 + 2 * dim
    raw = _decompress(body[_HEADER.size :], comps[comp_code], expected)
    if len(raw) != expected:
        raise EdgeFormatError(f"payload has {len(raw)} bytes, expected {expected}")
    off = sketch_bits // 8
    sketch = np.frombuffer(raw[:off], dtype="<u8").astype(np.uint64)
    leaves = variances = counters = None
    total = None
    if leaf_bits:
        size = n * leaf_bits // 8
        leaves = np.frombuffer(raw[off : off + size], dtype="<u8").astype(np.uint64)
        leaves = leaves.reshape(n, leaf_bits // 64)
        off += size
        variances = np.frombuffer(raw[off : off + 2 * n], dtype="<f2").copy()
        off += 2 * n
    if level == "streaming":
        (total,) = struct.unpack_from("<I", raw, off)
        off += 4
        counters = np.frombuffer(raw[off : off + 2 * dim], dtype="<u2").copy()
        if int(counters.max(initial=0)) > total:
            raise EdgeFormatError(f"streaming counters exceed the bundle total {total}")
    return EdgePackage(
        level, comps[comp_code], dim, n, sketch, leaves, variances, counters, digest, root, total
    )
