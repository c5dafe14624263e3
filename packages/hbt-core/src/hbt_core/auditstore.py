"""Where the audit log's rows live: a SQLite file (the default) or a PostgreSQL database.

:class:`~hbt_core.auditlog.AuditLog` keeps the Merkle tree and the proofs; a store only keeps
rows and is the one sequencer: :meth:`AuditStore.append` and :meth:`AuditStore.add_checkpoint`
take the next index or the current size inside one database transaction that holds the log's
write lock (SQLite's ``BEGIN IMMEDIATE``; PostgreSQL's ``SELECT ... FOR UPDATE`` on the head row),
so any number of processes appending to one log produce one gap-free sequence. The pattern is
described in docs/state.md.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from hbt_core.errors import AuditLogFormatError, AuditStoreUnavailableError, InvalidInputError

if TYPE_CHECKING:
    import psycopg

CheckpointRow = tuple[str, int, bytes, float, bytes]
"""(origin, size, root, timestamp, signature), the fields of a checkpoint in that order."""

URL_SCHEMES = ("postgresql://", "postgres://")
SQLITE_BUSY_TIMEOUT_S = 5.0  # how long a SQLite writer waits for another process's lock

SQLITE_SCHEMA_VERSION = 1  # PRAGMA user_version; 0 is a log written before the version was set
_SQLITE_SCHEMA = (
    "CREATE TABLE entries (idx INTEGER PRIMARY KEY, data BLOB NOT NULL, "
    "leaf_hash BLOB NOT NULL, ts REAL NOT NULL)",
    "CREATE TABLE checkpoints (size INTEGER NOT NULL, root BLOB NOT NULL, ts REAL NOT NULL, "
    "origin TEXT NOT NULL, signature BLOB NOT NULL)",
    f"PRAGMA user_version = {SQLITE_SCHEMA_VERSION}",
)
_SQLITE_COLUMNS = {
    "entries": ("idx", "data", "leaf_hash", "ts"),
    "checkpoints": ("size", "root", "ts", "origin", "signature"),
}

PG_COMPONENT = "hbt_core.auditlog"
"""This store's row in the database-wide ``schema_version`` table."""
PG_SCHEMA_LOCK = 0x5245534F4E  # pg_advisory_xact_lock key every store takes for schema changes
_PG_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 0 -> 1: the log. The single head row is the sequencer's lock and holds the size.
    (
        "CREATE TABLE hbt_audit_head (one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one), "
        "size BIGINT NOT NULL)",
        "INSERT INTO hbt_audit_head VALUES (TRUE, 0)",
        "CREATE TABLE hbt_audit_entries (idx BIGINT PRIMARY KEY, data BYTEA NOT NULL, "
        "leaf_hash BYTEA NOT NULL, ts DOUBLE PRECISION NOT NULL)",
        "CREATE TABLE hbt_audit_checkpoints (seq BIGSERIAL PRIMARY KEY, size BIGINT NOT NULL, "
        "root BYTEA NOT NULL, ts DOUBLE PRECISION NOT NULL, origin TEXT NOT NULL, "
        "signature BYTEA NOT NULL)",
    ),
)
PG_SCHEMA_VERSION = len(_PG_MIGRATIONS)


class AuditStore(Protocol):
    """Rows of one audit log. ``errors`` are the backend's exceptions that mean "unreadable"."""

    location: str
    read_only: bool
    errors: tuple[type[Exception], ...]

    def append(self, data: bytes, leaf_hash: bytes, ts: float) -> int: ...

    def add_checkpoint(self, build: Callable[[int], CheckpointRow]) -> CheckpointRow: ...

    def leaf_hashes(self, start: int) -> list[bytes]: ...

    def get(self, index: int) -> bytes | None: ...

    def entries(self) -> Iterator[tuple[int, bytes, bytes]]: ...

    def checkpoints(self, latest_only: bool = False) -> list[CheckpointRow]: ...

    def recorded_size(self) -> int | None:
        """The size the sequencer recorded apart from the entries, where there is one."""
        ...

    def snapshot(self) -> AbstractContextManager[None]: ...

    def scrub(self, exc: BaseException) -> str: ...

    def close(self) -> None: ...


def open_store(target: str | Path, *, read_only: bool) -> AuditStore:
    """A ``postgresql://`` URL opens PostgreSQL; anything else is a SQLite file path."""
    if isinstance(target, str) and target.startswith(URL_SCHEMES):
        return PostgresStore(target, read_only=read_only)
    return SQLiteStore(Path(target), read_only=read_only)


def _row(r: Any) -> CheckpointRow:
    origin, size, root, ts, sig = r
    return str(origin), int(size), bytes(root), float(ts), bytes(sig)


def _busy(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY / SQLITE_LOCKED: another process holds the file, it is not corrupt."""
    return "locked" in str(exc) or "busy" in str(exc)


class SQLiteStore:
    """One SQLite file in WAL mode; ``BEGIN IMMEDIATE`` serialises writers across processes."""

    errors: tuple[type[Exception], ...] = (sqlite3.Error,)

    def __init__(self, path: Path, *, read_only: bool) -> None:
        """A writer creates the schema in a file without tables; a reader (``mode=ro``) never
        writes. A file that is not an hbt audit log raises :class:`AuditLogFormatError`."""
        self.path = path
        self.location = str(path)
        self.read_only = read_only
        try:
            if read_only:
                uri = f"{path.resolve().as_uri()}?mode=ro"
                self._db = sqlite3.connect(
                    uri, uri=True, check_same_thread=False, isolation_level=None
                )
            else:
                self._db = sqlite3.connect(
                    str(path),
                    timeout=SQLITE_BUSY_TIMEOUT_S,
                    check_same_thread=False,
                    isolation_level=None,
                )
        except sqlite3.Error as exc:
            raise AuditLogFormatError(f"cannot open audit log {str(path)!r}: {exc}") from None
        try:
            self._check_schema(create=not read_only)
            if not read_only:
                self._switch_to_wal()
                self._db.execute("PRAGMA synchronous=FULL")
        except BaseException as exc:
            self._db.close()
            if isinstance(exc, sqlite3.OperationalError) and _busy(exc):
                raise AuditStoreUnavailableError(
                    f"audit log {str(path)!r} is busy: {exc}"
                ) from None
            if isinstance(exc, sqlite3.Error):
                raise AuditLogFormatError(
                    f"{str(path)!r} is not a readable audit log: {exc}"
                ) from None
            raise

    def _switch_to_wal(self) -> None:
        """Two processes opening a new file race to convert it, and SQLite answers the loser
        "database is locked" at once (waiting in its busy handler could deadlock): retry."""
        deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL").fetchall()
                return
            except sqlite3.OperationalError as exc:
                if not _busy(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

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
                for statement in _SQLITE_SCHEMA:
                    self._db.execute(statement)
            else:
                for table, columns in _SQLITE_COLUMNS.items():
                    found = tuple(row[1] for row in self._db.execute(f"PRAGMA table_info({table})"))
                    if found != columns:
                        raise AuditLogFormatError(
                            f"{self.location!r} is not an hbt audit log: table {table!r} "
                            f"has columns {list(found)}, expected {list(columns)}"
                        )
                (version,) = self._db.execute("PRAGMA user_version").fetchone()
                if version not in (0, SQLITE_SCHEMA_VERSION):
                    raise AuditLogFormatError(
                        f"{self.location!r} has audit-log schema version {version}; "
                        f"this version reads {SQLITE_SCHEMA_VERSION}"
                    )
            if create:
                self._db.execute("COMMIT")
        except BaseException:
            if create and self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    @contextmanager
    def _write(self) -> Iterator[int]:
        """A write transaction holding the file's write lock; yields the current size."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            (n,) = self._db.execute("SELECT COUNT(*) FROM entries").fetchone()
            yield int(n)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def append(self, data: bytes, leaf_hash: bytes, ts: float) -> int:
        with self._write() as n:
            self._db.execute("INSERT INTO entries VALUES (?, ?, ?, ?)", (n, data, leaf_hash, ts))
        return n

    def add_checkpoint(self, build: Callable[[int], CheckpointRow]) -> CheckpointRow:
        with self._write() as n:
            origin, size, root, ts, sig = row = build(n)
            self._db.execute(
                "INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?)", (size, root, ts, origin, sig)
            )
        return row

    def leaf_hashes(self, start: int) -> list[bytes]:
        rows = self._db.execute(
            "SELECT leaf_hash FROM entries WHERE idx >= ? ORDER BY idx", (start,)
        ).fetchall()
        return [bytes(r[0]) for r in rows]

    def get(self, index: int) -> bytes | None:
        row = self._db.execute("SELECT data FROM entries WHERE idx = ?", (index,)).fetchone()
        return None if row is None else bytes(row[0])

    def entries(self) -> Iterator[tuple[int, bytes, bytes]]:
        for idx, data, lh in self._db.execute(
            "SELECT idx, data, leaf_hash FROM entries ORDER BY idx"
        ):
            yield int(idx), bytes(data), bytes(lh)

    def checkpoints(self, latest_only: bool = False) -> list[CheckpointRow]:
        order = "rowid DESC LIMIT 1" if latest_only else "rowid"
        rows = self._db.execute(
            f"SELECT origin, size, root, ts, signature FROM checkpoints ORDER BY {order}"
        ).fetchall()
        return [_row(r) for r in rows]

    def recorded_size(self) -> int | None:
        return None  # the entries are the only record of the size

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One read transaction: entries and checkpoints seen at the same instant (WAL)."""
        self._db.execute("BEGIN")
        try:
            yield
        finally:
            self._db.execute("ROLLBACK")

    def scrub(self, exc: BaseException) -> str:
        return str(exc)

    def close(self) -> None:
        self._db.close()


def _describe(url: str) -> tuple[str, str | None]:
    """The URL without its password (for messages), and the password (to scrub messages)."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        info = conninfo_to_dict(url)
    except Exception:  # psycopg's parse error repeats the URL, password included
        raise AuditStoreUnavailableError(
            "the audit-log database URL is malformed (expected postgresql://user@host:port/db)"
        ) from None
    user = f"{info['user']}@" if info.get("user") else ""
    port = f":{info['port']}" if info.get("port") else ""
    password = info.get("password")
    return (
        f"postgresql://{user}{info.get('host', '')}{port}/{info.get('dbname', '')}",
        str(password) if password else None,
    )


class PostgresStore:
    """Tables ``hbt_audit_*`` in a PostgreSQL database, beside other stores' tables.

    The schema version is this component's row in the shared ``schema_version`` table;
    writers apply the numbered migrations under an advisory lock, readers never change the
    schema, and a database of a newer version is refused.
    """

    def __init__(self, url: str, *, read_only: bool) -> None:
        try:
            import psycopg
        except ImportError:
            raise AuditStoreUnavailableError(
                "a postgresql:// audit log needs psycopg: pip install 'hbt-core[postgres]'"
            ) from None
        self.errors: tuple[type[Exception], ...] = (psycopg.Error,)
        self._lost: tuple[type[Exception], ...] = (psycopg.OperationalError,)
        self.read_only = read_only
        self._url = url
        self.location, self._password = _describe(url)
        self._in_snapshot = False
        self._db: psycopg.Connection[Any] = self._connect()
        try:
            self._check_schema()
        except BaseException as exc:
            self._db.close()
            if isinstance(exc, psycopg.Error):
                raise AuditLogFormatError(
                    f"{self.location} is not a readable audit log: {self.scrub(exc)}"
                ) from None
            raise

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        try:
            db = psycopg.connect(self._url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise AuditStoreUnavailableError(
                f"cannot connect to the audit-log database {self.location}: {self.scrub(exc)}"
            ) from None
        if self.read_only:
            try:
                db.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            except psycopg.Error as exc:
                db.close()
                raise AuditStoreUnavailableError(
                    f"cannot open a read-only session on {self.location}: {self.scrub(exc)}"
                ) from None
        return db

    def _live(self) -> psycopg.Connection[Any]:
        """The session, connected anew when the last one was lost (server restart, killed
        backend). Only the connect is retried: the call that found the connection broken has
        already failed, and an append whose commit is unknown was resolved by
        :meth:`_resolve`. Inside a :meth:`snapshot` a lost session is not replaced, so a
        verification never mixes two views."""
        if self._db.closed and not self._in_snapshot:
            self._db = self._connect()
        return self._db

    def scrub(self, exc: BaseException) -> str:
        """The error text with the password (should a driver ever echo it) masked."""
        text = str(exc).strip()
        return text.replace(self._password, "***") if self._password else text

    def _check_schema(self) -> None:
        with self._db.transaction():
            if not self.read_only:
                self._db.execute("SELECT pg_advisory_xact_lock(%s)", (PG_SCHEMA_LOCK,))
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version "
                    "(component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
                )
            version = self._version()
            if version > PG_SCHEMA_VERSION:
                raise AuditLogFormatError(
                    f"{self.location} has audit-log schema version {version}; this version "
                    f"of hbt-core reads up to {PG_SCHEMA_VERSION}: upgrade hbt-core"
                )
            if self.read_only:
                if version == 0:
                    raise AuditLogFormatError(f"{self.location} holds no hbt audit log")
                return
            if version == PG_SCHEMA_VERSION:
                return
            tables = self._tables()
            if version == 0 and tables:
                raise AuditLogFormatError(
                    f"{self.location} has tables {tables} but no audit-log schema version: "
                    "refusing to write into them"
                )
            for statement in (s for step in _PG_MIGRATIONS[version:] for s in step):
                self._db.execute(statement)
            self._db.execute(
                "INSERT INTO schema_version VALUES (%s, %s) ON CONFLICT (component) "
                "DO UPDATE SET version = EXCLUDED.version",
                (PG_COMPONENT, PG_SCHEMA_VERSION),
            )

    def _version(self) -> int:
        exists = self._db.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
        if exists is None or not exists[0]:
            return 0
        row = self._db.execute(
            "SELECT version FROM schema_version WHERE component = %s", (PG_COMPONENT,)
        ).fetchone()
        return 0 if row is None else int(row[0])

    def _tables(self) -> list[str]:
        rows = self._db.execute(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'hbt\\_audit\\_%' "
            "AND schemaname = current_schema() ORDER BY tablename"
        ).fetchall()
        return [str(r[0]) for r in rows]

    @contextmanager
    def _write(self) -> Iterator[int]:
        """A transaction holding the head row's lock (the sequencer); yields the current size."""
        if self.read_only:
            raise InvalidInputError(f"audit log {self.location} is open read-only")
        db = self._live()
        with db.transaction():
            row = db.execute("SELECT size FROM hbt_audit_head FOR UPDATE").fetchone()
            if row is None:
                raise AuditLogFormatError(f"{self.location}: the audit log's head row is missing")
            yield int(row[0])

    def append(self, data: bytes, leaf_hash: bytes, ts: float) -> int:
        n, written = -1, False
        try:
            with self._write() as n:
                self._db.execute(
                    "INSERT INTO hbt_audit_entries VALUES (%s, %s, %s, %s)",
                    (n, data, leaf_hash, ts),
                )
                self._db.execute("UPDATE hbt_audit_head SET size = size + 1")
                written = True
        except self._lost as exc:
            if not written:  # lost before COMMIT was sent: the server rolls it back
                raise
            return self._resolve(n, leaf_hash, ts, exc)
        return n

    def _resolve(self, n: int, leaf_hash: bytes, ts: float, exc: BaseException) -> int:
        """The connection broke during COMMIT, so entry ``n`` may or may not be stored. Read it
        back on a new session, never append it again blindly: taking the head row's lock first
        waits out the old transaction should its backend still be finishing."""
        unreadable: tuple[type[Exception], ...] = (*self.errors, AuditStoreUnavailableError)
        try:
            db = self._live()
            with db.transaction():
                db.execute("SELECT size FROM hbt_audit_head FOR UPDATE")
                row = db.execute(
                    "SELECT leaf_hash, ts FROM hbt_audit_entries WHERE idx = %s", (n,)
                ).fetchone()
        except unreadable:
            raise AuditStoreUnavailableError(
                f"audit log {self.location}: the connection was lost while committing entry {n} "
                f"({self.scrub(exc)}) and the database cannot be read to tell whether it is "
                f"stored: check size and get({n}) before appending the record again"
            ) from None
        if row is not None and (bytes(row[0]), float(row[1])) == (leaf_hash, ts):
            return n  # it was committed: acknowledged now
        raise AuditStoreUnavailableError(
            f"audit log {self.location}: the connection was lost while committing; entry {n} "
            f"was not stored ({self.scrub(exc)})"
        )

    def add_checkpoint(self, build: Callable[[int], CheckpointRow]) -> CheckpointRow:
        """A checkpoint whose commit is unknown needs no care: signing another one is safe."""
        with self._write() as n:
            origin, size, root, ts, sig = row = build(n)
            self._db.execute(
                "INSERT INTO hbt_audit_checkpoints (size, root, ts, origin, signature) "
                "VALUES (%s, %s, %s, %s, %s)",
                (size, root, ts, origin, sig),
            )
        return row

    def leaf_hashes(self, start: int) -> list[bytes]:
        rows = (
            self._live()
            .execute(
                "SELECT leaf_hash FROM hbt_audit_entries WHERE idx >= %s ORDER BY idx", (start,)
            )
            .fetchall()
        )
        return [bytes(r[0]) for r in rows]

    def get(self, index: int) -> bytes | None:
        row = (
            self._live()
            .execute("SELECT data FROM hbt_audit_entries WHERE idx = %s", (index,))
            .fetchone()
        )
        return None if row is None else bytes(row[0])

    def entries(self) -> Iterator[tuple[int, bytes, bytes]]:
        """Streamed through a server-side cursor: a large log is never held in memory at once.
        Only valid inside :meth:`snapshot` (a named cursor needs a transaction)."""
        with self._live().cursor(name="hbt_audit_verify") as cur:
            cur.itersize = 2000
            cur.execute("SELECT idx, data, leaf_hash FROM hbt_audit_entries ORDER BY idx")
            for idx, data, lh in cur:
                yield int(idx), bytes(data), bytes(lh)

    def checkpoints(self, latest_only: bool = False) -> list[CheckpointRow]:
        order = "seq DESC LIMIT 1" if latest_only else "seq"
        rows = (
            self._live()
            .execute(
                f"SELECT origin, size, root, ts, signature FROM hbt_audit_checkpoints ORDER BY {order}"
            )
            .fetchall()
        )
        return [_row(r) for r in rows]

    def recorded_size(self) -> int | None:
        row = self._live().execute("SELECT size FROM hbt_audit_head").fetchone()
        return None if row is None else int(row[0])

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One REPEATABLE READ transaction: one consistent view while others append."""
        db = self._live()
        with db.transaction():
            db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            self._in_snapshot = True
            try:
                yield
            finally:
                self._in_snapshot = False

    def close(self) -> None:
        self._db.close()
