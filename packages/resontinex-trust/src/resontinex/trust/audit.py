"""A tamper-evident, append-only audit log: JSON lines chained by SHA-256.

Each record carries ``seq``, ``prev_hash`` (the previous record's hash; 64 zeros for the first)
and ``hash`` (SHA-256 of the record's canonical JSON without ``hash``). A sidecar ``<log>.head``
file, replaced atomically after every append, holds the record count and the last hash, so
deleting records at the end is detected too. Appends take an exclusive ``flock`` on
``<log>.lock``; each line is written with one ``write`` and fsync'ed before the head moves.

What it does not protect against: someone who can rewrite the whole log *and* its head file
consistently (anchor the head hash elsewhere, e.g. in a ticket, if that matters).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resontinex.trust.errors import AuditLogError, AuditTamperError
from resontinex.trust.files import atomic_write, file_lock

__all__ = ["GENESIS_HASH", "AuditLog", "AuditVerification"]

GENESIS_HASH = "0" * 64
_RESERVED = ("seq", "prev_hash", "hash")


def _canonical(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def record_hash(record: Mapping[str, Any]) -> str:
    """SHA-256 of the record without its own ``hash`` field."""
    return hashlib.sha256(_canonical({k: v for k, v in record.items() if k != "hash"})).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditVerification:
    """Outcome of :meth:`AuditLog.verify`: ``ok`` or the first problem found and where."""

    ok: bool
    records: int
    head_hash: str
    problem: str | None = None
    line: int | None = None


class AuditLog:
    """Append-only hash-chained JSON-lines log at ``path`` (created on first append)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
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

    def _read_head(self) -> tuple[int, str]:
        if not self.head_path.exists():
            if self.path.exists() and self.path.stat().st_size > 0:
                raise AuditTamperError(f"{self.head_path}: head file missing for a non-empty log")
            return 0, GENESIS_HASH
        try:
            head = json.loads(self.head_path.read_text("utf-8"))
            return int(head["records"]), str(head["head_hash"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AuditTamperError(f"{self.head_path}: unreadable head file ({exc})") from None

    def _write_head(self, records: int, head_hash: str) -> None:
        atomic_write(
            self.head_path, json.dumps({"records": records, "head_hash": head_hash}).encode()
        )

    def _last_line(self) -> bytes:
        with self.path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            end = handle.tell()
            block, data = 4096, b""
            while end > 0 and data.count(b"\n") < 2:
                start = max(0, end - block)
                handle.seek(start)
                data = handle.read(end - start) + data
                end = start
        lines = data.rstrip(b"\n").split(b"\n")
        return lines[-1]

    def append(self, event: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Append one record; returns it with ``seq``, ``prev_hash`` and ``hash`` filled in.

        Refuses (AuditTamperError) to extend a log whose tail does not match its head file.
        """
        clash = [k for k in _RESERVED if k in payload]
        if clash or "event" in payload:
            raise AuditLogError(f"payload: reserved key(s) {clash or ['event']}")
        with self._locked():
            count, prev = self._read_head()
            if count:
                try:
                    last = json.loads(self._last_line())
                except (OSError, ValueError) as exc:
                    raise AuditTamperError(f"{self.path}: unreadable last record ({exc})") from None
                if last.get("hash") != prev or last.get("seq") != count - 1:
                    raise AuditTamperError(f"{self.path}: last record does not match the head file")
            record: dict[str, Any] = {"seq": count, "event": event, **payload, "prev_hash": prev}
            record["hash"] = record_hash(record)
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
        with self.path.open("rb") as handle:
            return [json.loads(line) for line in handle if line.strip()]

    def verify(self) -> AuditVerification:
        """Walk the chain: every hash recomputed, every link and sequence number checked."""
        try:
            count, head_hash = self._read_head()
        except AuditTamperError as exc:
            return AuditVerification(False, 0, GENESIS_HASH, str(exc))
        prev, seen = GENESIS_HASH, 0
        if self.path.exists():
            with self.path.open("rb") as handle:
                for number, raw in enumerate(handle, start=1):
                    try:
                        record = json.loads(raw)
                    except ValueError:
                        return AuditVerification(
                            False, seen, prev, "line is not valid JSON", number
                        )
                    if not isinstance(record, dict):
                        return AuditVerification(
                            False, seen, prev, "line is not a JSON object", number
                        )
                    if record.get("seq") != seen:
                        return AuditVerification(
                            False, seen, prev, "sequence gap (record deleted or inserted)", number
                        )
                    if record.get("prev_hash") != prev:
                        return AuditVerification(
                            False,
                            seen,
                            prev,
                            "prev_hash does not link to the previous record",
                            number,
                        )
                    if record.get("hash") != record_hash(record):
                        return AuditVerification(
                            False,
                            seen,
                            prev,
                            "record content does not match its hash (edited)",
                            number,
                        )
                    prev, seen = record["hash"], seen + 1
        if seen != count or prev != head_hash:
            return AuditVerification(
                False, seen, prev, f"head file expects {count} records ending in {head_hash[:12]}"
            )
        return AuditVerification(True, seen, prev)

    def ensure_intact(self) -> AuditVerification:
        """Like :meth:`verify`, but raise :class:`AuditTamperError` on any problem."""
        result = self.verify()
        if not result.ok:
            where = f" at line {result.line}" if result.line else ""
            raise AuditTamperError(f"{self.path}{where}: {result.problem}")
        return result
