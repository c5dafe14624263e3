"""A tamper-evident, append-only audit log: JSON lines chained by SHA-256.

Each record carries ``seq``, ``prev_hash`` (the previous record's hash; 64 zeros for the first)
and ``hash`` (SHA-256 of the record's canonical JSON without ``hash``). A sidecar ``<log>.head``
file, replaced atomically after every append, holds the record count and the last hash, so
deleting records at the end is detected too. Appends take an exclusive ``flock`` on
``<log>.lock``; each line is written with one ``write`` and fsync'ed before the head moves.

A crash between those two steps leaves exactly one valid record after the head's last one.
That state, and only that one (one record, chained to the head's hash, its own hash correct),
is accepted: :meth:`AuditLog.verify` reports it as ``unanchored=1`` and the next
:meth:`AuditLog.append` moves the head over it first (logged). Two records ahead, a record that
does not chain or does not hash, a torn line: all remain tampering.

A verifier needs something to verify: a log that does not exist (or is empty with no head file)
raises :class:`AuditLogError` unless ``allow_missing=True``; a missing log whose head file
remains is tampering.

The same chain can live in a SQLite file or a PostgreSQL database instead
(:mod:`resontinex.trust.auditstore`); both share the record format and the checks here.

What it does not protect against: someone who can rewrite the whole log *and* its head file
consistently, or append one well-formed record (anchor the head hash elsewhere, e.g. in a
ticket, if that matters).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resontinex.trust.errors import AuditLogError, AuditTamperError
from resontinex.trust.files import atomic_write, file_lock
from resontinex.trust.logs import log_event

__all__ = ["GENESIS_HASH", "AuditLog", "AuditVerification", "record_problem"]

GENESIS_HASH = "0" * 64
_RESERVED = ("seq", "prev_hash", "hash", "active_until")
_HEX = frozenset("0123456789abcdef")
_logger = logging.getLogger("resontinex.trust.audit")
_ALLOW_MISSING = "allow_missing=True, or --allow-missing, accepts a log never written to"


def _canonical(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _parse(raw: bytes | str) -> dict[str, Any]:
    """One log line as a record; ValueError for anything our appends never write (NaN too)."""
    record = json.loads(raw, parse_constant=_no_constant)
    if not isinstance(record, dict):
        raise ValueError("line is not a JSON object")
    return record


def _is_hash(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX


def record_hash(record: Mapping[str, Any]) -> str:
    """SHA-256 of the record without its own ``hash`` field."""
    return hashlib.sha256(_canonical({k: v for k, v in record.items() if k != "hash"})).hexdigest()


def new_record(
    seq: int,
    event: str,
    payload: Mapping[str, Any],
    prev_hash: str,
    active_until: float | None = None,
) -> dict[str, Any]:
    """Record number ``seq`` after ``prev_hash``, hashed; every backend appends exactly this.

    ``active_until`` (a grant's expiry, POSIX seconds) is part of the hashed record, so what
    makes an override live cannot be changed without breaking the chain.
    """
    clash = [k for k in (*_RESERVED, "event") if k in payload]
    if clash:
        raise AuditLogError(f"payload: reserved key(s) {clash}")
    record: dict[str, Any] = {"seq": seq, "event": event, **payload, "prev_hash": prev_hash}
    if active_until is not None:
        if isinstance(active_until, bool) or not isinstance(active_until, int | float):
            raise AuditLogError(f"active_until: expected POSIX seconds, got {active_until!r}")
        record["active_until"] = float(active_until)
    try:
        record["hash"] = record_hash(record)
    except (TypeError, ValueError) as exc:  # NaN, an object JSON cannot hold
        raise AuditLogError(f"payload: not storable as JSON ({exc})") from None
    return record


def record_problem(record: Mapping[str, Any], seq: int, prev_hash: str) -> str | None:
    """Why ``record`` is not a valid record number ``seq`` after ``prev_hash``, or None."""
    if type(record.get("seq")) is not int or record["seq"] != seq:
        return "sequence gap (record deleted or inserted)"
    if record.get("prev_hash") != prev_hash:
        return "prev_hash does not link to the previous record"
    if record.get("hash") != record_hash(record):
        return "record content does not match its hash (edited)"
    return None


def is_live(record: Mapping[str, Any], now: float) -> bool:
    """Whether ``record`` carries an ``active_until`` later than ``now``."""
    until = record.get("active_until")
    return type(until) is float and until > now


@dataclass(frozen=True, slots=True)
class AuditVerification:
    """Outcome of :meth:`AuditLog.verify`: ``ok`` or the first problem found and where."""

    ok: bool
    records: int
    head_hash: str
    problem: str | None = None
    line: int | None = None
    unanchored: int = 0
    """Records after the head file's last one: 1 after an append interrupted before its head
    update (accepted; the next append anchors it), otherwise 0."""


class AuditLog:
    """Append-only hash-chained JSON-lines log at ``path`` (created on first append)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self.head_path = self.path.with_name(self.path.name + ".head")
        self.lock_path = self.path.with_name(self.path.name + ".lock")

    def __repr__(self) -> str:
        return f"AuditLog({str(self.path)!r})"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            with file_lock(self.lock_path):
                yield
        except OSError as exc:
            raise AuditLogError(f"audit_log_path: cannot lock {self.lock_path}: {exc}") from None

    def _read_head(self) -> tuple[int, str] | None:
        """(records, last hash) from the head file; None if there is none."""
        try:
            text = self.head_path.read_text("utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise AuditLogError(f"{self.head_path}: cannot read the head file ({exc})") from None
        try:
            head = json.loads(text, parse_constant=_no_constant)
        except ValueError as exc:
            raise AuditTamperError(f"{self.head_path}: unreadable head file ({exc})") from None
        records = head.get("records") if isinstance(head, dict) else None
        head_hash = head.get("head_hash") if isinstance(head, dict) else None
        if type(records) is not int or records < 0 or not _is_hash(head_hash):
            raise AuditTamperError(f"{self.head_path}: malformed head file {text[:120]!r}")
        return records, str(head_hash)

    def _write_head(self, records: int, head_hash: str) -> None:
        atomic_write(
            self.head_path, json.dumps({"records": records, "head_hash": head_hash}).encode()
        )

    def _tail(self, n: int) -> list[bytes]:
        """The last ``n`` lines of the log (fewer if it is shorter), read from the end."""
        with self.path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            end = handle.tell()
            block, data = 4096, b""
            while end > 0 and data.count(b"\n") <= n:
                start = max(0, end - block)
                handle.seek(start)
                data = handle.read(end - start) + data
                end = start
        stripped = data.rstrip(b"\n")
        return stripped.split(b"\n")[-n:] if stripped else []

    def _anchored_head(self) -> tuple[int, str]:
        """Under the lock: the (count, hash) to append after, matching the log's tail.

        A tail one valid chained record ahead of the head (a crash between the line's fsync
        and the head update) is anchored here, logged; any other mismatch raises.
        """
        head = self._read_head()
        count, prev = head if head is not None else (0, GENESIS_HASH)
        try:
            tail = [_parse(line) for line in self._tail(2)] if self.path.exists() else []
        except ValueError as exc:
            raise AuditTamperError(f"{self.path}: unreadable last record ({exc})") from None
        last = tail[-1] if tail else None
        if last is None and count == 0:
            return count, prev
        if last is not None and count and last.get("seq") == count - 1 and last.get("hash") == prev:
            return count, prev
        # One record ahead: it chains to the head's hash, and the line before it is the head's.
        before_ok = (
            len(tail) == 1
            if count == 0
            else len(tail) == 2 and tail[0].get("seq") == count - 1 and tail[0].get("hash") == prev
        )
        if last is not None and before_ok and record_problem(last, count, prev) is None:
            self._write_head(count + 1, last["hash"])
            log_event(
                _logger,
                logging.WARNING,
                "audit_head_recovered",
                path=str(self.path),
                records=count + 1,
                reason="an append was interrupted after writing its record, before its head update",
            )
            return count + 1, last["hash"]
        missing = "missing" if head is None else f"at {count} records"
        raise AuditTamperError(
            f"{self.path}: the log's tail does not match its head file ({missing})"
        )

    def append(
        self, event: str, payload: Mapping[str, Any], *, active_until: float | None = None
    ) -> dict[str, Any]:
        """Append one record; returns it with ``seq``, ``prev_hash`` and ``hash`` filled in.

        Refuses (AuditTamperError) to extend a log whose tail does not match its head file,
        except for the one record a crashed append can leave ahead of it (anchored first).
        """
        new_record(0, event, payload, GENESIS_HASH, active_until)  # bad input: before the lock
        with self._locked():
            count, prev = self._anchored_head()
            record = new_record(count, event, payload, prev, active_until)
            line = _canonical(record) + b"\n"
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, line)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                self._write_head(count + 1, record["hash"])
            except OSError as exc:
                raise AuditLogError(
                    f"audit_log_path: cannot append to {self.path}: {exc}"
                ) from None
            return record

    def records(self) -> list[dict[str, Any]]:
        """Every record, in order (no verification; see :meth:`verify`)."""
        if not self.path.exists():
            return []
        out = []
        with self.path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    out.append(_parse(raw))
                except ValueError as exc:
                    raise AuditLogError(
                        f"{self.path}:{number}: unreadable record ({exc})"
                    ) from None
        return out

    def active(self, now: float) -> list[dict[str, Any]]:
        """Records whose ``active_until`` is later than ``now`` (live grants). The whole chain
        is verified first: a log that does not verify grants nothing (:class:`AuditTamperError`);
        no log at all holds no grants."""
        self.ensure_intact(allow_missing=True)
        return [r for r in self.records() if is_live(r, now)]

    def close(self) -> None:
        """Nothing to release (every call opens and closes the file); for the store interface."""

    def verify(self, *, allow_missing: bool = False) -> AuditVerification:
        """Walk the chain: every hash recomputed, every link and sequence number checked.

        Opens nothing for writing. Raises :class:`AuditLogError` when there is nothing to verify
        (no log, or an empty one, and no head file) unless ``allow_missing``, and when a file
        cannot be read; every finding about the content is a result with ``ok=False``.
        """
        try:
            head = self._read_head()
        except AuditTamperError as exc:
            return AuditVerification(False, 0, GENESIS_HASH, str(exc))
        count, head_hash = head if head is not None else (0, GENESIS_HASH)
        prev = before = GENESIS_HASH
        seen = 0
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            if head is not None:
                return AuditVerification(
                    False, 0, GENESIS_HASH, f"log file missing; its head file records {count}"
                )
            if allow_missing:
                return AuditVerification(True, 0, GENESIS_HASH)
            raise AuditLogError(
                f"audit_log: {self.path} does not exist ({_ALLOW_MISSING})"
            ) from None
        with handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    record = _parse(raw)
                except ValueError as exc:
                    return AuditVerification(
                        False, seen, prev, f"line is not a valid record ({exc})", number
                    )
                problem = record_problem(record, seen, prev)
                if problem is not None:
                    return AuditVerification(False, seen, prev, problem, number)
                before, prev, seen = prev, record["hash"], seen + 1
        if seen == 0 and head is None and not allow_missing:
            raise AuditLogError(
                f"audit_log: {self.path} has no records and no head file ({_ALLOW_MISSING})"
            )
        if seen == count and prev == head_hash:
            return AuditVerification(True, seen, prev)
        if seen == count + 1 and before == head_hash:  # a crash before the head update
            return AuditVerification(True, seen, prev, unanchored=1)
        return AuditVerification(
            False,
            seen,
            prev,
            f"head file expects {count} records ending in {head_hash[:12]}; the log has {seen}",
        )

    def ensure_intact(self, *, allow_missing: bool = False) -> AuditVerification:
        """Like :meth:`verify`, but raise :class:`AuditTamperError` on any problem."""
        result = self.verify(allow_missing=allow_missing)
        if not result.ok:
            where = f" at line {result.line}" if result.line else ""
            raise AuditTamperError(f"{self.path}{where}: {result.problem}")
        return result
