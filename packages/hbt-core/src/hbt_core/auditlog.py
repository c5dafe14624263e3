"""Append-only audit log: an RFC 6962 Merkle log in SQLite with Ed25519-signed checkpoints.

``append`` stores a record and returns its index; ``inclusion_proof`` and ``consistency_proof``
return self-contained, JSON-serialisable proofs; ``checkpoint`` signs the current (size, root).
A verifier holding only the public key checks a proof bundle with :func:`verify_proof_bundle`.
"""

from __future__ import annotations

import base64
import json
import math
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hbt_core.errors import (
    AuditLogFormatError,
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
SCHEMA_VERSION = 1  # PRAGMA user_version; 0 is a log written before the version was set
_SCHEMA = (
    "CREATE TABLE entries (idx INTEGER PRIMARY KEY, data BLOB NOT NULL, "
    "leaf_hash BLOB NOT NULL, ts REAL NOT NULL)",
    "CREATE TABLE checkpoints (size INTEGER NOT NULL, root BLOB NOT NULL, ts REAL NOT NULL, "
    "origin TEXT NOT NULL, signature BLOB NOT NULL)",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)
_COLUMNS = {
    "entries": ("idx", "data", "leaf_hash", "ts"),
    "checkpoints": ("size", "root", "ts", "origin", "signature"),
}


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
    """SQLite-backed Merkle log. Thread-safe; SQLite's locking serialises writers across processes.

    ``signing_key`` is only needed for :meth:`checkpoint`; load it with
    :func:`hbt_core.keys.load_private_key` from configuration.
    """

    def __init__(
        self,
        path: str | Path,
        signing_key: Ed25519PrivateKey | None = None,
        origin: str = "resontinex/hbt-audit",
        *,
        read_only: bool = False,
    ) -> None:
        """Open (a writer creates an empty or new file's schema) or, with ``read_only``, open
        an existing log through SQLite's ``mode=ro`` URI so verification never writes to it.

        A file that is not an hbt audit log (foreign tables, zero bytes when read-only,
        truncated, corrupt) raises :class:`AuditLogFormatError`; nothing is written into it.
        """
        self.path = Path(path)
        self.origin = origin
        self.read_only = read_only
        self._key = signing_key
        self._lock = threading.RLock()
        self._leaves: list[bytes] = []
        self._hasher = TreeHasher(self._leaf)
        try:
            if read_only:
                uri = f"{self.path.resolve().as_uri()}?mode=ro"
                self._db = sqlite3.connect(
                    uri, uri=True, check_same_thread=False, isolation_level=None
                )
            else:
                self._db = sqlite3.connect(
                    str(self.path), check_same_thread=False, isolation_level=None
                )
        except sqlite3.Error as exc:
            raise AuditLogFormatError(f"cannot open audit log {str(self.path)!r}: {exc}") from None
        try:
            self._check_schema(create=not read_only)
            if not read_only:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
            self._refresh()
        except BaseException as exc:
            self._db.close()
            if isinstance(exc, sqlite3.Error):
                raise self._unreadable(exc) from None
            raise

    def _unreadable(self, exc: sqlite3.Error) -> AuditLogFormatError:
        return AuditLogFormatError(f"{str(self.path)!r} is not a readable audit log: {exc}")

    def _check_schema(self, create: bool) -> None:
        """Require exactly our tables; a writer creates them in a file that has no tables."""
        if create:
            self._db.execute("BEGIN IMMEDIATE")  # two writers creating one file: one wins
        try:
            tables = {
                name
                for (name,) in self._db.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                )
            }
            if not tables and create:
                for statement in _SCHEMA:
                    self._db.execute(statement)
            else:
                for table, columns in _COLUMNS.items():
                    found = tuple(row[1] for row in self._db.execute(f"PRAGMA table_info({table})"))
                    if found != columns:
                        raise AuditLogFormatError(
                            f"{str(self.path)!r} is not an hbt audit log: table {table!r} "
                            f"has columns {list(found)}, expected {list(columns)}"
                        )
                (version,) = self._db.execute("PRAGMA user_version").fetchone()
                if version not in (0, SCHEMA_VERSION):
                    raise AuditLogFormatError(
                        f"{str(self.path)!r} has audit-log schema version {version}; "
                        f"this version reads {SCHEMA_VERSION}"
                    )
            if create:
                self._db.execute("COMMIT")
        except BaseException:
            if create and self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def _writable(self) -> None:
        if self.read_only:
            raise InvalidInputError(f"audit log {str(self.path)!r} is open read-only")

    def _leaf(self, i: int) -> bytes:
        return self._leaves[i]

    def _refresh(self) -> None:
        rows = self._db.execute(
            "SELECT leaf_hash FROM entries WHERE idx >= ? ORDER BY idx", (len(self._leaves),)
        ).fetchall()
        self._leaves.extend(bytes(r[0]) for r in rows)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def size(self) -> int:
        with self._lock:
            self._refresh()
            return len(self._leaves)

    def append(self, record: bytes | Mapping[str, Any]) -> int:
        """Append a record (bytes, or a JSON object stored canonically); return its index."""
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
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                (n,) = self._db.execute("SELECT COUNT(*) FROM entries").fetchone()
                self._db.execute(
                    "INSERT INTO entries VALUES (?, ?, ?, ?)", (n, data, lh, time.time())
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._refresh()
            return int(n)

    def get(self, index: int) -> bytes:
        """The stored bytes of entry ``index``."""
        if isinstance(index, bool) or not isinstance(index, int):
            raise InvalidInputError(f"index must be an int, got {index!r}")
        with self._lock:
            row = self._db.execute("SELECT data FROM entries WHERE idx = ?", (index,)).fetchone()
        if row is None:
            raise InvalidInputError(f"index {index!r} is not in the log")
        return bytes(row[0])

    def root(self, size: int | None = None) -> bytes:
        with self._lock:
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
        with self._lock:
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
        with self._lock:
            n = self._check_size(new_size)
            m = self._check_size(old_size)
            if m > n:
                raise InvalidInputError(f"old_size {m} exceeds new_size {n}")
            return self._hasher.consistency_proof(m, n)

    def checkpoint(self) -> Checkpoint:
        """Sign and store the current (size, root)."""
        self._writable()
        if self._key is None:
            raise KeyConfigurationError("no signing key configured for this audit log")
        with self._lock:
            n = self._check_size(None)
            root = self._hasher.root(0, n)
            unsigned = Checkpoint(self.origin, n, root, time.time(), b"")
            cp = Checkpoint(
                self.origin, n, root, unsigned.timestamp, self._key.sign(unsigned.body())
            )
            self._db.execute(
                "INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?)",
                (n, root, cp.timestamp, cp.origin, cp.signature),
            )
            return cp

    def checkpoints(self) -> list[Checkpoint]:
        """Every stored checkpoint, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT origin, size, root, ts, signature FROM checkpoints ORDER BY rowid"
            ).fetchall()
        return [Checkpoint(o, int(s), bytes(r), float(t), bytes(sig)) for o, s, r, t, sig in rows]

    def latest_checkpoint(self) -> Checkpoint | None:
        with self._lock:
            row = self._db.execute(
                "SELECT origin, size, root, ts, signature FROM checkpoints "
                "ORDER BY rowid DESC LIMIT 1"
            ).fetchone()
        if row is None:
            return None
        o, s, r, t, sig = row
        return Checkpoint(o, int(s), bytes(r), float(t), bytes(sig))

    def proof_bundle(self, index: int) -> dict[str, Any]:
        """Everything an offline verifier needs: the record, its proof and a signed checkpoint.

        Reuses the latest checkpoint when it already covers ``index`` (cheap to serve per
        request); otherwise signs a new one.
        """
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise InvalidInputError(f"index must be a non-negative int, got {index!r}")
        with self._lock:
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
            return self._verify(public_key, expect)
        except sqlite3.Error as exc:
            raise self._unreadable(exc) from None

    def _verify(
        self, public_key: Ed25519PublicKey | None, expect: Checkpoint | None
    ) -> dict[str, Any]:
        with self._lock:
            rows = self._db.execute("SELECT idx, data, leaf_hash FROM entries ORDER BY idx")
            hashes: list[bytes] = []
            for expected, (idx, data, lh) in enumerate(rows):
                if idx != expected:
                    raise IntegrityError(f"entry index {idx} found where {expected} was expected")
                if leaf_hash(bytes(data)) != bytes(lh):
                    raise IntegrityError(f"entry {idx}: stored data does not match its leaf hash")
                hashes.append(bytes(lh))
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
