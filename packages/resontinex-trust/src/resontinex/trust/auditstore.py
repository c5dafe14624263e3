"""The break-glass audit chain in a database: a SQLite file (WAL) or PostgreSQL.

Same records, same hashes, same checks as the JSON-lines :class:`~resontinex.trust.audit.AuditLog`;
what a database adds is that any number of processes (SQLite: on one host; PostgreSQL: anywhere)
share one chain and see the same live overrides. Each append runs in one transaction that holds
the chain's write lock (SQLite ``BEGIN IMMEDIATE``, PostgreSQL ``SELECT ... FOR UPDATE`` on the
head row): it reads the head, inserts the record and moves the head, so two appenders never fork
the chain, and a process killed mid-append leaves nothing (the transaction never committed).
A grant's ``active_until`` is also kept in an indexed column, so live overrides are one query;
the column is checked against the hashed record on read and by :meth:`verify`.

Schema: a ``schema_version(component, version)`` table (the one every store in a shared
PostgreSQL database uses; component ``resontinex.trust.audit``) and numbered migrations applied
by writers in one transaction (PostgreSQL: under the advisory lock all stores share). A newer
version, tables no version row vouches for, a file that is not SQLite, an unreachable server or
refused credentials: a :class:`~resontinex.trust.errors.TrustStoreError` at open, never a
silently fresh chain. Readers (``read_only=True``) never create or migrate anything.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from resontinex.trust.audit import (
    GENESIS_HASH,
    AuditLog,
    AuditVerification,
    _parse,
    is_live,
    new_record,
    record_problem,
)
from resontinex.trust.errors import (
    AuditLogError,
    AuditTamperError,
    TrustStoreCorruptError,
    TrustStoreError,
    TrustStoreSchemaError,
    TrustStoreUnavailableError,
)

__all__ = [
    "SCHEMA_VERSION",
    "AuditChain",
    "PostgresAuditStore",
    "SQLiteAuditStore",
    "open_audit_chain",
]

COMPONENT = "resontinex.trust.audit"
SCHEMA_LOCK = 0x5245534F4E  # pg_advisory_xact_lock key every store takes for schema changes
CONNECT_TIMEOUT_S = 10
_BUSY_TIMEOUT_S = 30.0  # how long a SQLite writer waits for another process's transaction
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
_SQLITE_MAGIC = b"SQLite format 3\x00"
_URL_SCHEMES = ("postgresql://", "postgres://")
_PASSWORD_IN_URL = re.compile(r"(://[^:/@]*:)([^@/]*)@")
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 0 -> 1: the chain; the single head row is the append lock and holds (records, last hash).
    (
        "CREATE TABLE trust_audit_head (one INTEGER PRIMARY KEY CHECK (one = 1), "
        "records BIGINT NOT NULL, head_hash TEXT NOT NULL)",
        f"INSERT INTO trust_audit_head VALUES (1, 0, '{GENESIS_HASH}')",
        "CREATE TABLE trust_audit (seq BIGINT PRIMARY KEY, event TEXT NOT NULL, "
        "body TEXT NOT NULL, hash TEXT NOT NULL, active_until DOUBLE PRECISION)",
        "CREATE INDEX trust_audit_active ON trust_audit (active_until) "
        "WHERE active_until IS NOT NULL",
    ),
)
SCHEMA_VERSION = len(_MIGRATIONS)


class AuditChain(Protocol):
    """What break-glass needs from an audit chain, whichever backend holds it."""

    location: str

    def append(
        self, event: str, payload: Mapping[str, Any], *, active_until: float | None = None
    ) -> dict[str, Any]: ...

    def active(self, now: float) -> list[dict[str, Any]]: ...

    def records(self) -> list[dict[str, Any]]: ...

    def verify(self, *, allow_missing: bool = False) -> AuditVerification: ...

    def close(self) -> None: ...


def is_postgres_url(target: object) -> bool:
    return isinstance(target, str) and target.startswith(_URL_SCHEMES)


def _is_sqlite_file(path: Path) -> bool:
    if path.suffix.lower() in SQLITE_SUFFIXES:
        return True
    try:
        with path.open("rb") as handle:
            return handle.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC
    except OSError:
        return False


def open_audit_chain(target: object, *, read_only: bool = False) -> AuditChain:
    """A ``postgresql://`` URL opens PostgreSQL; a path ending in .db/.sqlite/.sqlite3 (or a
    file that starts with SQLite's header) opens SQLite; any other path is a JSON-lines log."""
    if isinstance(target, SQLiteAuditStore | PostgresAuditStore | AuditLog):
        return target
    if is_postgres_url(target):
        return PostgresAuditStore(str(target), read_only=read_only)
    if not isinstance(target, str | os.PathLike):
        raise AuditLogError(
            f"audit_log: expected a path, a postgresql:// URL or an audit chain, got {target!r}"
        )
    path = Path(os.fspath(target))
    if _is_sqlite_file(path):
        return SQLiteAuditStore(path, read_only=read_only)
    return AuditLog(path)


class _Tx:
    """One transaction's cursor; SQL uses ``?`` placeholders on both databases."""

    def __init__(self, cursor: Any, placeholder: str) -> None:
        self._cursor = cursor
        self._placeholder = placeholder
        self.appending: dict[str, Any] | None = None  # the record an append is committing

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._cursor.execute(sql.replace("?", self._placeholder), tuple(params))
        return [tuple(r) for r in self._cursor.fetchall()] if self._cursor.description else []


class _SQLChain:
    """The chain logic over a transaction; subclasses open connections and transactions."""

    location: str
    read_only: bool
    _LOCK_HEAD = ""  # SQLite's BEGIN IMMEDIATE already holds the write lock

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def _transaction(self, *, write: bool) -> contextlib.AbstractContextManager[_Tx]:
        raise NotImplementedError

    def _has_table(self, tx: _Tx, name: str) -> bool:
        raise NotImplementedError

    def _foreign(self, tx: _Tx) -> list[str]:
        """Tables that forbid creating the chain in a database with no version row for it."""
        raise NotImplementedError

    def _prepare(self) -> None:
        """Check the schema version; a writer creates or migrates it, a reader never does."""
        with self._transaction(write=not self.read_only) as tx:
            if not self.read_only:
                self._schema_lock(tx)
                tx.run(
                    "CREATE TABLE IF NOT EXISTS schema_version "
                    "(component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
                )
            rows = (
                tx.run("SELECT version FROM schema_version WHERE component = ?", (COMPONENT,))
                if self._has_table(tx, "schema_version")
                else []
            )
            version = rows[0][0] if rows else 0
            if type(version) is not int or not 0 <= version <= SCHEMA_VERSION:
                raise TrustStoreSchemaError(
                    f"{self.location} holds schema version {version!r} of {COMPONENT}; this "
                    f"resontinex-trust reads up to {SCHEMA_VERSION}: upgrade resontinex-trust"
                )
            if self.read_only:
                if version != SCHEMA_VERSION:
                    raise TrustStoreSchemaError(
                        f"{self.location} holds no {COMPONENT} chain of version "
                        f"{SCHEMA_VERSION} (found version {version})"
                    )
                return
            if version == 0:
                foreign = self._foreign(tx)
                if foreign:
                    raise TrustStoreSchemaError(
                        f"{self.location} has tables {foreign} but no {COMPONENT} schema "
                        "version: not a store this resontinex-trust created; refusing to write"
                    )
            for statement in (s for step in _MIGRATIONS[version:] for s in step):
                tx.run(statement)
            if version != SCHEMA_VERSION:
                tx.run("DELETE FROM schema_version WHERE component = ?", (COMPONENT,))
                tx.run(
                    "INSERT INTO schema_version (component, version) VALUES (?, ?)",
                    (COMPONENT, SCHEMA_VERSION),
                )

    def _schema_lock(self, tx: _Tx) -> None:
        """Held while creating or migrating the schema (SQLite: the write transaction is)."""

    def append(
        self, event: str, payload: Mapping[str, Any], *, active_until: float | None = None
    ) -> dict[str, Any]:
        """Append one record in one transaction holding the head row; returns it hashed."""
        if self.read_only:
            raise AuditLogError(f"{self.location}: the audit chain is open read-only")
        new_record(0, event, payload, GENESIS_HASH, active_until)  # bad input: no transaction
        with self._transaction(write=True) as tx:
            head = tx.run(f"SELECT records, head_hash FROM trust_audit_head{self._LOCK_HEAD}")
            if not head:
                raise AuditTamperError(f"{self.location}: the audit chain's head row is missing")
            count, prev = int(head[0][0]), str(head[0][1])
            record = tx.appending = new_record(count, event, payload, prev, active_until)
            tx.run(
                "INSERT INTO trust_audit (seq, event, body, hash, active_until) "
                "VALUES (?, ?, ?, ?, ?)",
                (count, event, json.dumps(record, sort_keys=True), record["hash"], active_until),
            )
            tx.run(
                "UPDATE trust_audit_head SET records = ?, head_hash = ?",
                (count + 1, record["hash"]),
            )
        return record

    def active(self, now: float) -> list[dict[str, Any]]:
        """Live grants (``active_until`` later than ``now``) by the index, each checked in the
        same snapshot against its hash, its columns, its predecessor's hash and the head row:
        a grant edited, inserted or extended in the database raises :class:`AuditTamperError`
        instead of granting. (The full walk is :meth:`verify`.)"""
        with self._transaction(write=False) as tx:
            head = tx.run("SELECT records FROM trust_audit_head")
            rows = tx.run(
                "SELECT a.seq, a.body, a.hash, a.active_until, p.hash FROM trust_audit a "
                "LEFT JOIN trust_audit p ON p.seq = a.seq - 1 "
                "WHERE a.active_until > ? ORDER BY a.seq",
                (now,),
            )
        if len(head) != 1:
            raise AuditTamperError(f"{self.location}: the audit chain's head row is missing")
        live = []
        for seq, body, digest, until, before in rows:
            try:
                record = _parse(body)
            except ValueError:
                raise AuditTamperError(f"{self.location}: record {seq} is unreadable") from None
            if (
                record.get("hash") != digest
                or record_problem(record, seq, GENESIS_HASH if seq == 0 else before) is not None
                or record.get("active_until") != until
                or not seq < head[0][0]
            ):
                raise AuditTamperError(f"{self.location}: record {seq} was edited or inserted")
            if is_live(record, now):
                live.append(record)
        return live

    def records(self) -> list[dict[str, Any]]:
        """Every record, in order (no verification; see :meth:`verify`)."""
        with self._transaction(write=False) as tx:
            rows = tx.run("SELECT seq, body FROM trust_audit ORDER BY seq")
        out = []
        for seq, body in rows:
            try:
                out.append(_parse(body))
            except ValueError as exc:
                raise AuditLogError(f"{self.location}: record {seq} unreadable ({exc})") from None
        return out

    def verify(self, *, allow_missing: bool = False) -> AuditVerification:
        """Walk the chain in one snapshot: every hash, link, sequence number and column checked,
        and the head row against the last record. ``allow_missing`` is accepted for the
        interface: an opened store always exists (a missing one fails at open)."""
        with self._transaction(write=False) as tx:
            head = tx.run("SELECT records, head_hash FROM trust_audit_head")
            rows = tx.run("SELECT seq, body, hash, active_until FROM trust_audit ORDER BY seq")
        if len(head) != 1:
            return AuditVerification(False, 0, GENESIS_HASH, "the head row is missing")
        count, head_hash = int(head[0][0]), str(head[0][1])
        prev, seen = GENESIS_HASH, 0
        for seq, body, digest, until in rows:
            try:
                record = _parse(body)
            except ValueError as exc:
                return AuditVerification(False, seen, prev, f"seq {seq}: not a record ({exc})")
            problem = record_problem(record, seen, prev)
            if problem is None and (seq != seen or digest != record["hash"]):
                problem = "the row's seq or hash column disagrees with its record"
            if problem is None and until != record.get("active_until"):
                problem = "the row's active_until column disagrees with its record"
            if problem is not None:
                return AuditVerification(False, seen, prev, f"seq {seq}: {problem}")
            prev, seen = record["hash"], seen + 1
        if seen == count and prev == head_hash:
            return AuditVerification(True, seen, prev)
        return AuditVerification(
            False,
            seen,
            prev,
            f"head row expects {count} records ending in {head_hash[:12]}; the chain has {seen}",
        )

    def ensure_intact(self) -> AuditVerification:
        """Like :meth:`verify`, but raise :class:`AuditTamperError` on any problem."""
        result = self.verify()
        if not result.ok:
            raise AuditTamperError(f"{self.location}: {result.problem}")
        return result

    def __enter__(self) -> _SQLChain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError


class SQLiteAuditStore(_SQLChain):
    """The chain in one SQLite file (WAL, ``synchronous=FULL``); processes on one host share it."""

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        super().__init__()
        self.path = Path(path)
        self.location = str(self.path)
        self.read_only = read_only
        if read_only and not self.path.exists():
            raise AuditLogError(f"audit_log: {self.path} does not exist")
        try:
            if read_only:
                uri = f"{self.path.resolve().as_uri()}?mode=ro"
                self._db = sqlite3.connect(
                    uri, uri=True, isolation_level=None, check_same_thread=False
                )
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except (sqlite3.Error, OSError) as exc:
            raise TrustStoreCorruptError(f"{self.path}: cannot open ({exc})") from None
        try:
            try:
                self._db.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
                if not read_only:
                    self._switch_to_wal()
                    self._db.execute("PRAGMA synchronous = FULL")
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    raise TrustStoreError(f"{self.path}: database busy ({exc})") from None
                raise TrustStoreCorruptError(
                    f"{self.path}: not a readable SQLite database ({exc})"
                ) from None
            except sqlite3.DatabaseError as exc:
                raise TrustStoreCorruptError(
                    f"{self.path}: not a readable SQLite database ({exc})"
                ) from None
            self._prepare()
        except BaseException:
            self._db.close()
            raise

    def _switch_to_wal(self) -> None:
        """Two processes opening a new file race to convert it, and SQLite answers the loser
        "database is locked" at once (waiting in its busy handler could deadlock): retry."""
        deadline = time.monotonic() + _BUSY_TIMEOUT_S
        while True:
            try:
                self._db.execute("PRAGMA journal_mode = WAL").fetchall()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    @contextlib.contextmanager
    def _transaction(self, *, write: bool) -> Iterator[_Tx]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield _Tx(self._db.cursor(), "?")
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                    raise TrustStoreError(f"{self.path}: database busy ({exc})") from None
                raise TrustStoreCorruptError(
                    f"{self.path}: not a readable resontinex-trust audit database ({exc})"
                ) from None

    def _has_table(self, tx: _Tx, name: str) -> bool:
        return bool(
            tx.run("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        )

    def _foreign(self, tx: _Tx) -> list[str]:
        """One file per store: any table but the version table makes the file someone else's."""
        rows = tx.run(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'schema_version' "
            "ORDER BY name"
        )
        return [str(r[0]) for r in rows]

    def close(self) -> None:
        self._db.close()


class _CommitUnknownError(TrustStoreUnavailableError):
    """The connection broke while an append was committing: whether it is stored is unknown."""

    def __init__(self, record: dict[str, Any], cause: str) -> None:
        super().__init__(f"the connection was lost while committing record {record['seq']}")
        self.record = record
        self.cause = cause


def describe_url(url: str) -> tuple[str, str | None]:
    """``postgresql://user@host:port/db`` for messages, and the password (to scrub messages)."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        info = conninfo_to_dict(url)
    except Exception:  # psycopg's parse error repeats the URL, password included
        raise TrustStoreUnavailableError(
            "the audit database URL is malformed (expected postgresql://user@host:port/db)"
        ) from None
    user = f"{info['user']}@" if info.get("user") else ""
    port = f":{info['port']}" if info.get("port") else ""
    password = info.get("password")
    where = f"postgresql://{user}{info.get('host', '')}{port}/{info.get('dbname', '')}"
    return where, (str(password) if password else None)


class PostgresAuditStore(_SQLChain):
    """Tables ``trust_audit*`` in a PostgreSQL database (it may hold other stores' tables)."""

    _LOCK_HEAD = " FOR UPDATE"

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        super().__init__()
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise TrustStoreUnavailableError(
                "a postgresql:// audit chain needs psycopg: pip install 'resontinex-trust[postgres]'"
            ) from None
        self._url = url
        self.read_only = read_only
        self.location, self._password = describe_url(url)
        self._db = self._connect()
        try:
            self._prepare()
        except BaseException:
            self._db.close()
            raise

    def scrub(self, exc: BaseException) -> str:
        """The driver's message, first line, with the password masked should it ever appear."""
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        text = text.replace(self._password, "***") if self._password else text
        return _PASSWORD_IN_URL.sub(r"\1***@", text)

    def _connect(self) -> Any:
        import psycopg

        try:
            db = psycopg.connect(self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
            if self.read_only:
                db.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        except psycopg.Error as exc:
            raise TrustStoreUnavailableError(
                f"cannot connect to the audit database {self.location}: {self.scrub(exc)}"
            ) from None
        return db

    @contextlib.contextmanager
    def _transaction(self, *, write: bool) -> Iterator[_Tx]:
        """A transaction (REPEATABLE READ for reads: one snapshot); a lost connection raises
        :class:`TrustStoreUnavailableError` and is replaced on the next call."""
        import psycopg

        with self._lock:
            if self._db.closed or self._db.broken:
                self._db = self._connect()
            tx, body_done = None, False
            try:
                with self._db.transaction(), self._db.cursor() as cursor:
                    if not write:
                        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    tx = _Tx(cursor, "%s")
                    yield tx
                    body_done = True
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                if body_done and tx is not None and tx.appending is not None:
                    raise _CommitUnknownError(tx.appending, self.scrub(exc)) from None
                raise TrustStoreUnavailableError(
                    f"the audit database {self.location} failed: {self.scrub(exc)}"
                ) from None
            except psycopg.Error as exc:
                raise TrustStoreError(
                    f"the audit database {self.location} failed: {self.scrub(exc)}"
                ) from None

    def append(
        self, event: str, payload: Mapping[str, Any], *, active_until: float | None = None
    ) -> dict[str, Any]:
        """As on every backend; an append whose connection broke during ``COMMIT`` is read back
        (:meth:`_resolve`), never appended a second time."""
        try:
            return super().append(event, payload, active_until=active_until)
        except _CommitUnknownError as unknown:
            return self._resolve(unknown.record, unknown.cause)

    def _resolve(self, record: dict[str, Any], cause: str) -> dict[str, Any]:
        """Whether ``record`` was stored, read on a new session under the head row's lock (so
        the old transaction, should its backend still be finishing, has ended): stored, it is
        returned as appended; otherwise the error says whether it was not stored or cannot be
        known now."""
        seq = record["seq"]
        try:
            with self._transaction(write=True) as tx:
                tx.run("SELECT records FROM trust_audit_head FOR UPDATE")
                rows = tx.run("SELECT hash FROM trust_audit WHERE seq = ?", (seq,))
        except TrustStoreError:
            raise TrustStoreUnavailableError(
                f"the audit database {self.location}: the connection was lost while committing "
                f"record {seq} ({cause}) and the database cannot be read to tell whether it is "
                "stored: read the chain before appending it again"
            ) from None
        if rows and rows[0][0] == record["hash"]:
            return record
        raise TrustStoreUnavailableError(
            f"the audit database {self.location}: the connection was lost while committing; "
            f"record {seq} was not stored ({cause})"
        )

    def _schema_lock(self, tx: _Tx) -> None:
        tx.run("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK,))

    def _has_table(self, tx: _Tx, name: str) -> bool:
        return tx.run("SELECT to_regclass(?) IS NOT NULL", (name,)) == [(True,)]

    def _foreign(self, tx: _Tx) -> list[str]:
        """A shared database: only tables of this store's prefix forbid creating it."""
        rows = tx.run(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'trust\\_audit%%' "
            "AND schemaname = current_schema() ORDER BY tablename"
        )
        return [str(r[0]) for r in rows]

    def close(self) -> None:
        self._db.close()
