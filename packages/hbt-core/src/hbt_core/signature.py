"""The behavioural signature (the twin): per-probe hypervectors, variances, a bundle, a commitment.

For every probe the model answers ``n_samples`` prompts (the probe and fresh perturbations);
each answer is encoded to counters; the probe's leaf is the majority of all its answers and its
variance is the mean pairwise normalised Hamming distance between the per-answer hypervectors
(a real spread, from at least two samples). The signature bundles the leaves, each bound to its
probe's vector, with integer counters, and commits to the leaves and to a header (format,
encoder config, model name, run seed, bundle counts and total) with an RFC 6962 Merkle root.
Encoding is split in shards (:func:`encode_shard`) and reduced (:func:`reduce_shards`) so a
distributed run gives exactly the single-process result.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from hbt_core import merkle
from hbt_core.challenges import Probe, perturb
from hbt_core.encoding import (
    NGRAM_RANGE,
    POSITIONS_RANGE,
    QUANTUM_RANGE,
    TOP_K_RANGE,
    LogitEncoder,
    TextEncoder,
)
from hbt_core.errors import (
    DimensionMismatchError,
    IntegrityError,
    InvalidInputError,
    ModelFormatError,
    check_int,
)
from hbt_core.files import atomic_write
from hbt_core.hdc import DEFAULT_DIM, Accumulator, Packed, base_vector, check_dim, hamming_many
from hbt_core.models import LogitModel, TextModel

Mode = Literal["logit", "text"]


@dataclass(frozen=True)
class EncoderConfig:
    """How responses are collected and encoded; part of what a signature commits to."""

    mode: Mode = "logit"
    dim: int = DEFAULT_DIM
    n_samples: int = 3
    top_k: int = 8
    quantum: int = 64
    positions: int = 8
    ngram: int = 3
    gen_tokens: int = 24

    def __post_init__(self) -> None:
        if self.mode not in ("logit", "text"):
            raise InvalidInputError(f"mode must be 'logit' or 'text', got {self.mode!r}")
        check_dim(self.dim)
        check_int("n_samples", self.n_samples, low=2, high=256)
        check_int("gen_tokens", self.gen_tokens, low=1, high=1024)
        # Validated here, not first at encode time: a config is committed and saved with a
        # signature, so an invalid one must never exist (top_k=0 or quantum=-5 used to).
        for name, (low, high) in (
            ("top_k", TOP_K_RANGE),
            ("quantum", QUANTUM_RANGE),
            ("positions", POSITIONS_RANGE),
            ("ngram", NGRAM_RANGE),
        ):
            check_int(f"EncoderConfig.{name}", getattr(self, name), low=low, high=high)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def probe_vector(probe_id: str, dim: int) -> Packed:
    return base_vector(f"probe:{probe_id}", dim)


def _sample_seed(run_seed: int, probe_id: str, sample: int) -> int:
    h = hashlib.blake2b(f"{run_seed}|{probe_id}|{sample}".encode(), digest_size=8)
    return int.from_bytes(h.digest(), "little") >> 1


def response_counts(
    model: LogitModel | TextModel, probe: Probe, config: EncoderConfig, run_seed: int
) -> list[tuple[npt.NDArray[np.int64], int]]:
    """Counters of each of the ``n_samples`` answers of ``model`` to ``probe`` in this run."""
    if config.mode == "logit":
        if not isinstance(model, LogitModel):
            raise InvalidInputError(f"model {getattr(model, 'name', model)!r} has no logits")
        enc = LogitEncoder(config.dim, config.top_k, config.quantum, config.positions)
        return [
            enc.counts(model.next_token_distributions(prompt, config.positions))
            for prompt in perturb(probe, config.n_samples, run_seed)
        ]
    tenc = TextEncoder(config.dim, config.ngram)
    return [tenc.counts(text) for text in generations(model, probe, config, run_seed)]


def generations(
    model: LogitModel | TextModel, probe: Probe, config: EncoderConfig, run_seed: int
) -> list[bytes]:
    """The texts a text-mode run collects for ``probe`` (one per perturbed prompt)."""
    if not isinstance(model, TextModel):
        raise InvalidInputError(f"model {getattr(model, 'name', model)!r} cannot generate")
    prompts = perturb(probe, config.n_samples, run_seed)
    return [
        model.generate(p, config.gen_tokens, _sample_seed(run_seed, probe.probe_id, s))
        for s, p in enumerate(prompts)
    ]


@dataclass
class ShardResult:
    """What one worker returns: per-probe leaves and variances and the shard's bundle counters."""

    probe_ids: list[str]
    leaves: Packed
    variances: npt.NDArray[np.float64]
    counts: npt.NDArray[np.int64]
    total: int


def _threshold(counts: npt.NDArray[np.int64], total: int) -> Packed:
    return Accumulator.from_counts(counts, total).threshold()


def encode_probe(
    model: LogitModel | TextModel, probe: Probe, config: EncoderConfig, run_seed: int
) -> tuple[Packed, float]:
    """One probe's leaf hypervector and its variance across samples."""
    samples = response_counts(model, probe, config, run_seed)
    per_sample = np.stack([_threshold(c, t) for c, t in samples])
    dists = [hamming_many(per_sample[i], per_sample[i + 1 :]) for i in range(len(samples) - 1)]
    variance = float(np.concatenate(dists).mean()) / config.dim
    total = np.sum([c for c, _ in samples], axis=0)
    leaf = _threshold(total, sum(t for _, t in samples))
    return leaf, variance


def encode_shard(
    model: LogitModel | TextModel, probes: Sequence[Probe], config: EncoderConfig, run_seed: int
) -> ShardResult:
    """Map step: encode a subset of probes (a module-level function, so executors can ship it)."""
    acc = Accumulator(config.dim)
    leaves, variances = [], []
    for probe in probes:
        leaf, var = encode_probe(model, probe, config, run_seed)
        leaves.append(leaf)
        variances.append(var)
        acc.add(np.bitwise_xor(leaf, probe_vector(probe.probe_id, config.dim)))
    words = config.dim // 64
    return ShardResult(
        [p.probe_id for p in probes],
        np.stack(leaves) if leaves else np.zeros((0, words), dtype=np.uint64),
        np.asarray(variances, dtype=np.float64),
        acc.counts,
        int(acc.total),
    )


FORMAT_VERSION = 2
_HEADER_TAG = b"hbt-signature/v2\x00"


@dataclass
class Signature:
    """A model's behavioural twin over a challenge set.

    ``root`` is an RFC 6962 Merkle root over one leaf per probe (id, leaf, variance) followed
    by a header leaf that commits everything else a consumer uses: the format version, the
    encoder config, the model name, the run seed, the bundle ``total`` and a SHA-256 of the
    bundle ``counts``. Editing any of them in a saved file breaks :meth:`verify_commitment`.
    """

    config: EncoderConfig
    probe_ids: tuple[str, ...]
    leaves: Packed
    variances: npt.NDArray[np.float64]
    counts: npt.NDArray[np.int64]
    total: int
    model_name: str = ""
    run_seed: int = 0
    root: bytes = field(default=b"")

    def __post_init__(self) -> None:
        n, words = len(self.probe_ids), self.config.dim // 64
        if self.leaves.shape != (n, words):
            raise DimensionMismatchError(f"leaves shape {self.leaves.shape} != ({n}, {words})")
        if self.variances.shape != (n,) or self.counts.shape != (self.config.dim,):
            raise DimensionMismatchError("variances or counts do not match the probes/dim")
        if not np.all(np.isfinite(self.variances)):
            raise InvalidInputError("signature variances must be finite")
        check_int("total", self.total, low=0)
        check_int("run_seed", self.run_seed, low=0)
        if not isinstance(self.model_name, str):
            raise InvalidInputError(f"model_name must be a string, got {self.model_name!r}")
        if not self.root:
            self.root = merkle.root_of(self.committed_data())

    @property
    def dim(self) -> int:
        return self.config.dim

    def leaf_data(self) -> list[bytes]:
        """Committed bytes per probe: id, leaf hypervector, variance."""
        return [
            pid.encode()
            + b"\x00"
            + leaf.astype("<u8").tobytes()
            + np.float64(var).astype("<f8").tobytes()
            for pid, leaf, var in zip(self.probe_ids, self.leaves, self.variances, strict=True)
        ]

    def header_data(self) -> bytes:
        """The committed header leaf: format, config, model, run seed, total, counts digest."""
        header = {
            "format": FORMAT_VERSION,
            "config": self.config.to_json(),
            "model_name": self.model_name,
            "run_seed": self.run_seed,
            "total": self.total,
            "counts_sha256": hashlib.sha256(self.counts.astype("<i8").tobytes()).hexdigest(),
        }
        return _HEADER_TAG + json.dumps(header, sort_keys=True, separators=(",", ":")).encode()

    def committed_data(self) -> list[bytes]:
        """Every Merkle leaf of the commitment: the probe leaves, then the header leaf."""
        return [*self.leaf_data(), self.header_data()]

    def bundled(self) -> Packed:
        """The bundled signature hypervector (majority of probe-bound leaves)."""
        return _threshold(self.counts, self.total)

    def verify_commitment(self) -> None:
        if merkle.root_of(self.committed_data()) != self.root:
            raise IntegrityError(
                "signature does not match its Merkle root (leaves, variances, counts, total, "
                "config, model name or run seed were altered)"
            )

    def save(self, path: str | Path) -> None:
        """Write as ``.npz`` of plain arrays (no pickle), atomically."""
        meta = json.dumps(
            {
                "format": FORMAT_VERSION,
                "config": self.config.to_json(),
                "probe_ids": list(self.probe_ids),
                "model_name": self.model_name,
                "run_seed": self.run_seed,
                "total": self.total,
                "root": self.root.hex(),
            }
        )
        buf = io.BytesIO()
        np.savez(
            buf,
            leaves=self.leaves,
            variances=self.variances,
            counts=self.counts,
            meta=np.frombuffer(meta.encode(), dtype=np.uint8),
        )
        atomic_write(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> Signature:
        """Read a saved signature and verify its commitment.

        Raises :class:`ModelFormatError` for an unreadable file or another format version
        (format 1 committed neither counts nor config, so it is refused, not trusted) and
        :class:`IntegrityError` when the contents do not match the committed root.
        """
        try:
            with np.load(Path(path), allow_pickle=False) as z:
                meta = json.loads(bytes(z["meta"]).decode())
                if not isinstance(meta, dict):
                    raise ValueError("meta is not a JSON object")
                version = meta.get("format", 1)
                if version != FORMAT_VERSION:
                    raise ModelFormatError(
                        f"signature {str(path)!r} has format {version!r}; this version reads "
                        f"format {FORMAT_VERSION} only (format 1 did not commit the counts and "
                        "config: rebuild it with `hbt fingerprint`)"
                    )
                sig = cls(
                    EncoderConfig(**meta["config"]),
                    tuple(meta["probe_ids"]),
                    _array(z, "leaves", np.uint64),
                    _array(z, "variances", np.float64),
                    _array(z, "counts", np.int64),
                    meta["total"],
                    meta["model_name"],
                    meta["run_seed"],
                    bytes.fromhex(meta["root"]),
                )
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
            raise ModelFormatError(f"cannot read signature {str(path)!r}: {exc}") from None
        sig.verify_commitment()
        return sig


def _array(z: Any, name: str, dtype: type[np.generic]) -> npt.NDArray[Any]:
    """A stored array, refused unless its values survive the cast to ``dtype`` unchanged."""
    raw = z[name]
    if raw.dtype.kind not in "iuf":
        raise ValueError(f"{name} has dtype {raw.dtype}, expected numbers")
    arr = raw.astype(dtype)
    if not np.array_equal(arr, raw):
        raise ValueError(f"{name} does not fit {np.dtype(dtype).name}")
    return arr


def reduce_shards(
    shards: Sequence[ShardResult], config: EncoderConfig, model_name: str = "", run_seed: int = 0
) -> Signature:
    """Reduce step: concatenate leaves in shard order and sum counters (exact, associative)."""
    if not shards:
        raise InvalidInputError("shards must not be empty")
    acc = Accumulator(config.dim)
    for s in shards:
        acc.merge(Accumulator.from_counts(s.counts, s.total))
    return Signature(
        config,
        tuple(pid for s in shards for pid in s.probe_ids),
        np.concatenate([s.leaves for s in shards]),
        np.concatenate([s.variances for s in shards]),
        acc.counts,
        int(acc.total),
        model_name,
        run_seed,
    )


def build_signature(
    model: LogitModel | TextModel,
    probes: Sequence[Probe],
    config: EncoderConfig | None = None,
    run_seed: int = 0,
) -> Signature:
    """Fingerprint ``model`` on ``probes`` in one process."""
    if not probes:
        raise InvalidInputError("probes must not be empty")
    cfg = config or EncoderConfig()
    check_int("run_seed", run_seed, low=0)
    shard = encode_shard(model, probes, cfg, run_seed)
    return reduce_shards([shard], cfg, getattr(model, "name", ""), run_seed)
