"""Append-only audit log: an RFC 6962 Merkle log with Ed25519-signed checkpoints, stored in
SQLite (default) or PostgreSQL (:mod:`hbt_core.auditstore`).

``append`` stores a record and returns its index; ``inclusion_proof`` and ``consistency_proof``
return self-contained, JSON-serialisable proofs; ``checkpoint`` signs the current (size, root).
A verifier holding only the public key checks a proof bundle with :func:`verify_proof_bundle`.
"""

from __future__ import annotations

import base64
import json
import math
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hbt_core.auditstore import SQLiteStore, open_store
from hbt_core.errors import (
    AuditLogFormatError,
    AuditStoreUnavailableError,
    IntegrityError,
    InvalidInputError,
    KeyConfigurationError,
)
from hbt_core.merkle import (
    TreeHasher,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)

MAX_RECORD_BYTES = 1 << 20


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def _unb64(name: str, s: object) -> bytes:
    if not isinstance(s, str):
        raise IntegrityError(f"{name} must be a base64 string, got {type(s).__name__}")
    try:
        return base64.b64decode(s, validate=True)
    except ValueError:
        raise IntegrityError(f"{name} is not valid base64") from None


def canonical_json(record: Mapping[str, Any]) -> bytes:
    """Deterministic JSON bytes (sorted keys, no spaces, NaN/inf rejected)."""
    try:
        return json.dumps(
            record, sort_keys=True, separators=(",", ":"), allow_nan=False, ensure_ascii=False
        ).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"record is not JSON-serialisable: {exc}") from None


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement "the log ``origin`` had ``size`` entries with root ``root``"."""

    origin: str
    size: int
    root: bytes
    timestamp: float
    signature: bytes

    def body(self) -> bytes:
        """The signed text, in the style of a transparency-log checkpoint note."""
        return f"{self.origin}\n{self.size}\n{_b64(self.root)}\n{self.timestamp!r}\n".encode()

    def verify(self, public_key: Ed25519PublicKey) -> None:
        try:
            public_key.verify(self.signature, self.body())
        except InvalidSignature:
            raise IntegrityError(
                f"checkpoint signature for size {self.size} does not verify"
            ) from None

    def to_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "size": self.size,
            "root": _b64(self.root),
            "timestamp": self.timestamp,
            "signature": _b64(self.signature),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Checkpoint:
        try:
            size, ts, origin = obj["size"], obj["timestamp"], obj["origin"]
        except (KeyError, TypeError) as exc:
            raise IntegrityError(f"checkpoint is missing field {exc}") from None
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise IntegrityError(f"checkpoint size must be a non-negative int, got {size!r}")
        if not isinstance(ts, (int, float)) or isinstance(ts, bool) or not math.isfinite(ts):
            raise IntegrityError(f"checkpoint timestamp must be a finite number, got {ts!r}")
        if not isinstance(origin, str):
            raise IntegrityError(f"checkpoint origin must be a string, got {origin!r}")
        return cls(
            origin,
            size,
            _unb64("root", obj.get("root")),
            float(ts),
            _unb64("signature", obj.get("signature")),
        )


@dataclass(frozen=True)
class InclusionProof:
    """Proof that entry ``index`` (with ``leaf_hash``) is in the tree of ``size`` with ``root``."""

    index: int
    size: int
    leaf_hash: bytes
    path: tuple[bytes, ...]
    root: bytes

    def verify(self) -> None:
        verify_inclusion(self.leaf_hash, self.index, self.size, self.path, self.root)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "size": self.size,
            "leaf_hash": _b64(self.leaf_hash),
            "path": [_b64(p) for p in self.path],
            "root": _b64(self.root),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> InclusionProof:
        try:
            index, size, path = obj["index"], obj["size"], obj["path"]
        except (KeyError, TypeError) as exc:
            raise IntegrityError(f"inclusion proof is missing field {exc}") from None
        for name, v in (("index", index), ("size", size)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise IntegrityError(f"inclusion proof {name} must be an int, got {v!r}")
        if not isinstance(path, list):
            raise IntegrityError("inclusion proof path must be a list")
        return cls(
            index,
            size,
            _unb64("leaf_hash", obj.get("leaf_hash")),
            tuple(_unb64("path", p) for p in path),
            _unb64("root", obj.get("root")),
        )


class AuditLog:
    """Merkle log over an :class:`~hbt_core.auditstore.AuditStore`. Thread-safe; the store's
    database serialises appends from any number of processes (one sequencer).

    ``path`` is a SQLite file (the default store) or a ``postgresql://`` URL; the password may
    also come from libpq's ``PGPASSWORD`` or ``~/.pgpass`` instead of the URL. ``signing_key``
    is only needed for :meth:`checkpoint`; load it with :func:`hbt_core.keys.load_private_key`.
    """

    def __init__(
        self,
        path: str | Path,
        signing_key: Ed25519PrivateKey | None = None,
        origin: str = "resontinex/hbt-audit",
        *,
        read_only: bool = False,
    ) -> None:
        """Open (a writer creates the schema of an empty file or database, a reader never
        writes: SQLite ``mode=ro``, a PostgreSQL session in read-only transactions).

        Something that is not an hbt audit log (foreign tables, an empty file when read-only,
        truncated, corrupt, a newer schema version) raises :class:`AuditLogFormatError`; an
        unreachable database or wrong credentials :class:`AuditStoreUnavailableError`.
        Nothing is written into what is refused.
        """
        self.origin = origin
        self.read_only = read_only
        self._key = signing_key
        self._lock = threading.RLock()
        self._leaves: list[bytes] = []
        self._hasher = TreeHasher(self._leaf)
        self._store = open_store(path, read_only=read_only)
        self.location = self._store.location
        try:
            self._refresh()
        except BaseException as exc:
            self._store.close()
            if isinstance(exc, self._store.errors):
                raise self._unreadable(exc) from None
            raise

    @property
    def path(self) -> Path:
        """The SQLite file (a PostgreSQL log has none: use :attr:`location`)."""
        if not isinstance(self._store, SQLiteStore):
            raise InvalidInputError(f"audit log {self.location} is not a file; see .location")
        return self._store.path

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the log's thread lock; a database failure mid-run (connection lost, disk
        error, lock timeout) becomes a typed error naming the store, never a driver's own."""
        with self._lock:
            try:
                yield
            except self._store.errors as exc:
                raise AuditStoreUnavailableError(
                    f"audit log {self.location} failed: {self._store.scrub(exc)}"
                ) from None

    def _unreadable(self, exc: BaseException) -> AuditLogFormatError:
        text = self._store.scrub(exc)
        return AuditLogFormatError(f"{self.location!r} is not a readable audit log: {text}")

    def _writable(self) -> None:
        if self.read_only:
            raise InvalidInputError(f"audit log {self.location!r} is open read-only")

    def _leaf(self, i: int) -> bytes:
        return self._leaves[i]

    def _refresh(self) -> None:
        self._leaves.extend(self._store.leaf_hashes(len(self._leaves)))

    def close(self) -> None:
        with self._locked():
            self._store.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def size(self) -> int:
        with self._locked():
            self._refresh()
            return len(self._leaves)

    def append(self, record: bytes | Mapping[str, Any]) -> int:
        """Append a record (bytes, or a JSON object stored canonically); return its index.

        When this returns, the record is committed (an acknowledged record survives a crash
        of this process)."""
        if isinstance(record, Mapping):
            data = canonical_json(record)
        elif isinstance(record, (bytes, bytearray)):
            data = bytes(record)
        else:
            raise InvalidInputError(
                f"record must be bytes or a JSON object, got {type(record).__name__}"
            )
        if len(data) > MAX_RECORD_BYTES:
            raise InvalidInputError(f"record has {len(data)} bytes, limit {MAX_RECORD_BYTES}")
        lh = leaf_hash(data)
        self._writable()
        with self._locked():
            n = self._store.append(data, lh, time.time())
            self._refresh()
            return n

    def get(self, index: int) -> bytes:
        """The stored bytes of entry ``index``."""
        if isinstance(index, bool) or not isinstance(index, int):
            raise InvalidInputError(f"index must be an int, got {index!r}")
        with self._locked():
            data = self._store.get(index)
        if data is None:
            raise InvalidInputError(f"index {index!r} is not in the log")
        return data

    def root(self, size: int | None = None) -> bytes:
        with self._locked():
            n = self._check_size(size)
            return self._hasher.root(0, n)

    def _check_size(self, size: int | None) -> int:
        self._refresh()
        if size is None:
            return len(self._leaves)
        if (
            isinstance(size, bool)
            or not isinstance(size, int)
            or not 0 <= size <= len(self._leaves)
        ):
            raise InvalidInputError(
                f"size must be an int in [0, {len(self._leaves)}], got {size!r}"
            )
        return size

    def inclusion_proof(self, index: int, size: int | None = None) -> InclusionProof:
        """Proof that entry ``index`` is in the tree of ``size`` (default: current size)."""
        with self._locked():
            n = self._check_size(size)
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n:
                raise InvalidInputError(f"index must be an int in [0, {n}), got {index!r}")
            return InclusionProof(
                index,
                n,
                self._leaves[index],
                tuple(self._hasher.inclusion_proof(index, n)),
                self._hasher.root(0, n),
            )

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        with self._locked():
            n = self._check_size(new_size)
            m = self._check_size(old_size)
            if m > n:
                raise InvalidInputError(f"old_size {m} exceeds new_size {n}")
            return self._hasher.consistency_proof(m, n)

    def checkpoint(self) -> Checkpoint:
        """Sign and store the (size, root) of the log as the sequencer sees it: taken under
        the append lock, so checkpoints from several processes never go backwards."""
        self._writable()
        key = self._key
        if key is None:
            raise KeyConfigurationError("no signing key configured for this audit log")

        def build(n: int) -> tuple[str, int, bytes, float, bytes]:
            self._refresh()
            root = self._hasher.root(0, n)
            unsigned = Checkpoint(self.origin, n, root, time.time(), b"")
            return self.origin, n, root, unsigned.timestamp, key.sign(unsigned.body())

        with self._locked():
            return Checkpoint(*self._store.add_checkpoint(build))

    def checkpoints(self) -> list[Checkpoint]:
        """Every stored checkpoint, oldest first."""
        with self._locked():
            return [Checkpoint(*row) for row in self._store.checkpoints()]

    def latest_checkpoint(self) -> Checkpoint | None:
        with self._locked():
            rows = self._store.checkpoints(latest_only=True)
        return Checkpoint(*rows[0]) if rows else None

    def proof_bundle(self, index: int) -> dict[str, Any]:
        """Everything an offline verifier needs: the record, its proof and a signed checkpoint.

        Reuses the latest checkpoint when it already covers ``index`` (cheap to serve per
        request); otherwise signs a new one.
        """
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise InvalidInputError(f"index must be a non-negative int, got {index!r}")
        with self._locked():
            cp = self.latest_checkpoint()
            if cp is None or cp.size <= index:
                cp = self.checkpoint()
            proof = self.inclusion_proof(index, cp.size)
        return {
            "record": _b64(self.get(index)),
            "proof": proof.to_json(),
            "checkpoint": cp.to_json(),
        }

    def verify(
        self, public_key: Ed25519PublicKey | None = None, expect: Checkpoint | None = None
    ) -> dict[str, Any]:
        """Re-hash every stored record, rebuild the tree and check every stored checkpoint.

        ``expect`` is a checkpoint the verifier saw earlier (from a proof bundle or an earlier
        run): the log must still contain it, so a log cut back behind it (entries and
        checkpoint rows deleted together) fails. Raises :class:`IntegrityError` naming the
        first problem and :class:`AuditLogFormatError` when the file cannot be read.
        """
        try:
            with self._lock, self._store.snapshot():
                return self._verify(public_key, expect)
        except self._store.errors as exc:
            raise self._unreadable(exc) from None

    def _verify(
        self, public_key: Ed25519PublicKey | None, expect: Checkpoint | None
    ) -> dict[str, Any]:
        hashes: list[bytes] = []
        for expected, (idx, data, lh) in enumerate(self._store.entries()):
            if idx != expected:
                raise IntegrityError(f"entry index {idx} found where {expected} was expected")
            if leaf_hash(data) != lh:
                raise IntegrityError(f"entry {idx}: stored data does not match its leaf hash")
            hashes.append(lh)
        recorded = self._store.recorded_size()
        if recorded is not None and recorded != len(hashes):
            raise IntegrityError(
                f"the sequencer recorded {recorded} entries but the log holds {len(hashes)}: "
                "entries were deleted or inserted behind it"
            )
        hasher = TreeHasher(hashes.__getitem__)
        cps = self.checkpoints()
        previous: Checkpoint | None = None
        for cp in cps:
            if cp.size > len(hashes):
                raise IntegrityError(f"checkpoint of size {cp.size} exceeds the log")
            if hasher.root(0, cp.size) != cp.root:
                raise IntegrityError(f"checkpoint of size {cp.size}: root does not match")
            if public_key is not None:
                cp.verify(public_key)
            if previous is not None and previous.size <= cp.size:
                verify_consistency(
                    previous.size,
                    cp.size,
                    previous.root,
                    cp.root,
                    hasher.consistency_proof(previous.size, cp.size),
                )
            previous = cp
        if expect is not None:
            if public_key is not None:
                expect.verify(public_key)
            if expect.size > len(hashes):
                raise IntegrityError(
                    f"log has {len(hashes)} entries, fewer than the expected checkpoint's "
                    f"{expect.size}: it was truncated"
                )
            if hasher.root(0, expect.size) != expect.root:
                raise IntegrityError(
                    f"log does not contain the expected checkpoint of size {expect.size} "
                    "(its first entries were rewritten)"
                )
        return {
            "entries": len(hashes),
            "checkpoints": len(cps),
            "root": _b64(hasher.root(0, len(hashes))),
            "signatures_checked": public_key is not None,
        }


def verify_proof_bundle(bundle: Mapping[str, Any], public_key: Ed25519PublicKey) -> bytes:
    """Verify a bundle from :meth:`AuditLog.proof_bundle`; return the record bytes."""
    if not isinstance(bundle, Mapping):
        raise IntegrityError(f"proof bundle must be a JSON object, got {type(bundle).__name__}")
    try:
        record = _unb64("record", bundle["record"])
        proof = InclusionProof.from_json(bundle["proof"])
        cp = Checkpoint.from_json(bundle["checkpoint"])
    except KeyError as exc:
        raise IntegrityError(f"proof bundle is missing field {exc}") from None
    cp.verify(public_key)
    if proof.size != cp.size or proof.root != cp.root:
        raise IntegrityError("proof does not refer to the signed checkpoint")
    if leaf_hash(record) != proof.leaf_hash:
        raise IntegrityError("record does not match the proven leaf hash")
    proof.verify()
    return record
