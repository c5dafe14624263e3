"""Where the service keeps what must outlive a process, and the umbrella's own store.

Without a database URL every store is a SQLite file in the state directory; with one
(``RESONTINEX_DATABASE_URL`` / ``resontinex serve --database-url``) every store lives in that
PostgreSQL database, so any number of workers and replicas share one audit log, one drift latch
and, through their members, one budget ledger and one break-glass chain. The stores follow the
pattern of docs/state.md: versioned schemas created or migrated by writers under one advisory
lock, a newer version refused, typed errors at open that name the database but never its
password.

The umbrella owns one store: the drift alarm latch (:class:`DriftLatch`). One replica's alarm
raises the risk on every replica, and an operator's acknowledgement clears it everywhere. In a
shared database it also pins the fingerprint of the audit log's signing key
(:func:`pin_signing_key`), so a replica started with another key is refused.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from resontinex.pipeline.errors import (
    PipelineConfigError,
    StateFormatError,
    StateUnavailableError,
)

if TYPE_CHECKING:
    import psycopg

DATABASE_URL_ENV = "RESONTINEX_DATABASE_URL"
URL_SCHEMES = ("postgresql://", "postgres://")
# SQLite file of each store in the state directory (the default, one node).
AUDIT_FILE = "audit.sqlite"
LEDGER_FILE = "ledger.sqlite"
BREAK_GLASS_FILE = "break-glass.sqlite"
DRIFT_LATCH_FILE = "drift-latch.sqlite"
SQLITE_BUSY_TIMEOUT_S = 10.0  # how long a SQLite writer waits for another process's lock

PG_SCHEMA_LOCK = 0x5245534F4E  # the advisory lock every store takes for schema changes
LATCH_COMPONENT = "resontinex.drift_latch"  # its row in the shared schema_version table
_LATCH_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 0 -> 1: one row, the latch.
    (
        "CREATE TABLE resontinex_drift_latch (one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one), "
        "flagged BOOLEAN NOT NULL, changed_at DOUBLE PRECISION NOT NULL, reason TEXT NOT NULL)",
        "INSERT INTO resontinex_drift_latch VALUES (TRUE, FALSE, 0, 'created')",
    ),
)
LATCH_VERSION = len(_LATCH_MIGRATIONS)
_SQLITE_LATCH_COLUMNS = ("one", "flagged", "changed_at", "reason")
KEY_PIN_COMPONENT = "resontinex.signing_key"
_KEY_PIN_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 0 -> 1: one row, the fingerprint of the first key that started against the database.
    (
        "CREATE TABLE resontinex_signing_key (one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one), "
        "fingerprint TEXT NOT NULL, recorded_at DOUBLE PRECISION NOT NULL)",
    ),
)
KEY_PIN_VERSION = len(_KEY_PIN_MIGRATIONS)


def redact(url: str) -> str:
    """``postgresql://user@host:port/db``: the URL as messages may show it (no password)."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        raise PipelineConfigError(
            "database_url is malformed (expected postgresql://user[:password]@host:port/db)"
        ) from None
    user = f"{parts.username}@" if parts.username else ""
    return f"{parts.scheme}://{user}{parts.hostname or ''}{port}{parts.path}"


@dataclass(frozen=True)
class StateLocation:
    """The state directory and, optionally, the one database URL that switches every store."""

    state_dir: Path
    database_url: str | None = None

    def __post_init__(self) -> None:
        url = self.database_url
        if url is not None and (not isinstance(url, str) or not url.startswith(URL_SCHEMES)):
            # never echo the value: it may carry a password
            raise PipelineConfigError(
                f"database_url must be a postgresql:// URL ({DATABASE_URL_ENV} or --database-url)"
            )
        if url is not None:
            redact(url)  # a malformed URL is refused here, at start

    def target(self, sqlite_file: str) -> str | Path:
        """Where one store lives: the database URL, else its SQLite file in the state directory."""
        return self.database_url or self.state_dir / sqlite_file

    @property
    def where(self) -> str:
        return redact(self.database_url) if self.database_url else str(self.state_dir)


class DriftLatch(Protocol):
    """The drift alarm latch: set by an alarm, cleared by an operator's acknowledgement."""

    location: str

    def read(self) -> bool: ...

    def set(self, flagged: bool, reason: str) -> None: ...

    def close(self) -> None: ...


class MemoryLatch:
    """A latch of one process (library use and tests); nothing survives the process."""

    location = "memory"

    def __init__(self) -> None:
        self._flagged = False

    def read(self) -> bool:
        return self._flagged

    def set(self, flagged: bool, reason: str) -> None:
        self._flagged = flagged

    def close(self) -> None:
        pass


def _busy(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY / SQLITE_LOCKED: another process holds the file, it is not corrupt."""
    return "locked" in str(exc) or "busy" in str(exc)


class SQLiteLatch:
    """One row in a SQLite file (WAL, ``synchronous=FULL``), shared by the processes of a host."""

    def __init__(self, path: Path) -> None:
        self.location = str(path)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                str(path),
                check_same_thread=False,
                isolation_level=None,
                timeout=SQLITE_BUSY_TIMEOUT_S,
            )
        except sqlite3.Error as exc:
            raise StateFormatError(
                f"cannot open the drift latch {self.location!r}: {exc}"
            ) from None
        try:
            self._switch_to_wal()
            self._db.execute("PRAGMA synchronous=FULL")
            self._prepare()
        except BaseException as exc:
            self._db.close()
            if isinstance(exc, sqlite3.OperationalError) and _busy(exc):
                raise StateUnavailableError(
                    f"the drift latch {self.location!r} is busy: {exc}"
                ) from None
            if isinstance(exc, sqlite3.Error):
                raise StateFormatError(
                    f"{self.location!r} is not a readable drift latch: {exc}"
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

    def _prepare(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")  # two processes creating one file: one wins
        try:
            tables = [r[0] for r in self._db.execute("SELECT name FROM sqlite_master")]
            (version,) = self._db.execute("PRAGMA user_version").fetchone()
            if not tables and version == 0:
                self._db.execute(
                    "CREATE TABLE drift_latch (one INTEGER PRIMARY KEY CHECK (one = 1), "
                    "flagged INTEGER NOT NULL, changed_at REAL NOT NULL, reason TEXT NOT NULL)"
                )
                self._db.execute("INSERT INTO drift_latch VALUES (1, 0, 0, 'created')")
                self._db.execute(f"PRAGMA user_version = {LATCH_VERSION}")
            elif version > LATCH_VERSION:
                raise StateFormatError(
                    f"{self.location!r} has drift-latch schema version {version}; this version "
                    f"of resontinex reads up to {LATCH_VERSION}: upgrade resontinex"
                )
            else:
                found = tuple(r[1] for r in self._db.execute("PRAGMA table_info(drift_latch)"))
                if version != LATCH_VERSION or found != _SQLITE_LATCH_COLUMNS:
                    raise StateFormatError(
                        f"{self.location!r} is not a drift latch (tables {tables}, version "
                        f"{version}): refusing to write into it"
                    )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def read(self) -> bool:
        with self._lock:
            try:
                row = self._db.execute("SELECT flagged FROM drift_latch").fetchone()
            except sqlite3.Error as exc:
                raise StateUnavailableError(f"drift latch {self.location!r}: {exc}") from None
        if row is None:
            raise StateFormatError(f"drift latch {self.location!r} has lost its row")
        return bool(row[0])

    def set(self, flagged: bool, reason: str) -> None:
        with self._lock:
            try:
                self._db.execute(
                    "UPDATE drift_latch SET flagged = ?, changed_at = ?, reason = ?",
                    (int(flagged), time.time(), reason),
                )
            except sqlite3.Error as exc:
                raise StateUnavailableError(f"drift latch {self.location!r}: {exc}") from None

    def close(self) -> None:
        self._db.close()


def _scrub(url: str, exc: BaseException) -> str:
    """A driver's message without the URL's password."""
    text, password = str(exc).strip(), urlsplit(url).password
    return text.replace(password, "***") if password else text


def _connect(url: str) -> psycopg.Connection[Any]:
    """An autocommit connection; a missing driver or an unreachable database is a typed error
    naming the database without its password."""
    try:
        import psycopg
    except ImportError:
        raise StateUnavailableError(
            "a postgresql:// database needs psycopg: pip install 'resontinex[postgres]'"
        ) from None
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise StateUnavailableError(
            f"cannot connect to the database {redact(url)}: {_scrub(url, exc)}"
        ) from None


def _migrate(
    db: psycopg.Connection[Any],
    location: str,
    component: str,
    table: str,
    migrations: tuple[tuple[str, ...], ...],
) -> None:
    """Create or migrate one component's tables under the schema lock, in the caller's
    transaction; a newer version or an unversioned table of that name is refused."""
    db.execute("SELECT pg_advisory_xact_lock(%s)", (PG_SCHEMA_LOCK,))
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_version "
        "(component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
    )
    row = db.execute(
        "SELECT version FROM schema_version WHERE component = %s", (component,)
    ).fetchone()
    version, latest = (0 if row is None else int(row[0])), len(migrations)
    if version > latest:
        raise StateFormatError(
            f"{location} has {component} schema version {version}; this version of resontinex "
            f"reads up to {latest}: upgrade resontinex"
        )
    if version == latest:
        return
    exists = db.execute("SELECT to_regclass(%s)", (table,)).fetchone()
    if version == 0 and exists is not None and exists[0] is not None:
        raise StateFormatError(
            f"{location} has a {table} table but no schema version: refusing to write into it"
        )
    for statement in (s for step in migrations[version:] for s in step):
        db.execute(statement)
    db.execute(
        "INSERT INTO schema_version VALUES (%s, %s) ON CONFLICT (component) "
        "DO UPDATE SET version = EXCLUDED.version",
        (component, latest),
    )


def pin_signing_key(url: str, fingerprint: str) -> str:
    """The fingerprint every replica on this database must sign the audit log with: the first
    start records ``fingerprint``, every later one reads the recorded one back (one
    transaction, so two replicas starting at once cannot both win)."""
    import psycopg

    location = redact(url)
    with _connect(url) as db:
        try:
            with db.transaction():
                _migrate(
                    db, location, KEY_PIN_COMPONENT, "resontinex_signing_key", _KEY_PIN_MIGRATIONS
                )
                db.execute(
                    "INSERT INTO resontinex_signing_key (fingerprint, recorded_at) "
                    "VALUES (%s, %s) ON CONFLICT (one) DO NOTHING",
                    (fingerprint, time.time()),
                )
                row = db.execute("SELECT fingerprint FROM resontinex_signing_key").fetchone()
        except psycopg.Error as exc:
            raise StateUnavailableError(
                f"cannot read the signing-key pin in {location}: {_scrub(url, exc)}"
            ) from None
    if row is None:
        raise StateFormatError(f"the signing-key pin in {location} has lost its row")
    return str(row[0])


class PostgresLatch:
    """Table ``resontinex_drift_latch`` (one row) in the shared database.

    One connection per process, replaced after a failure; a failed read or write raises
    :class:`StateUnavailableError` (the watch then counts the latch as set: fail closed).
    """

    def __init__(self, url: str) -> None:
        self._url, self.location, self._lock = url, redact(url), threading.Lock()
        # a missing driver or an unreachable database: a typed error before anything else
        self._db: psycopg.Connection[Any] | None = _connect(url)
        import psycopg

        self._psycopg = psycopg
        try:
            with self._db.transaction():
                _migrate(
                    self._db,
                    self.location,
                    LATCH_COMPONENT,
                    "resontinex_drift_latch",
                    _LATCH_MIGRATIONS,
                )
        except BaseException as exc:
            self.close()
            if isinstance(exc, psycopg.Error):
                raise StateFormatError(
                    f"{self.location} is not a usable drift latch: {_scrub(url, exc)}"
                ) from None
            raise

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        with self._lock:
            try:
                if self._db is None or self._db.closed:
                    self._db = _connect(self._url)
                cur = self._db.execute(sql, params)
                return cur.fetchone() if cur.description else None
            except self._psycopg.Error as exc:
                if self._db is not None:
                    self._db.close()
                self._db = None
                raise StateUnavailableError(
                    f"drift latch {self.location}: {_scrub(self._url, exc)}"
                ) from None

    def read(self) -> bool:
        row = self._run("SELECT flagged FROM resontinex_drift_latch")
        if row is None:
            raise StateFormatError(f"drift latch {self.location} has lost its row")
        return bool(row[0])

    def set(self, flagged: bool, reason: str) -> None:
        self._run(
            "UPDATE resontinex_drift_latch SET flagged = %s, changed_at = %s, reason = %s",
            (flagged, time.time(), reason),
        )

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
            self._db = None


def open_drift_latch(target: str | Path) -> SQLiteLatch | PostgresLatch:
    """A ``postgresql://`` URL opens PostgreSQL; anything else is a SQLite file path."""
    if isinstance(target, str) and target.startswith(URL_SCHEMES):
        return PostgresLatch(target)
    return SQLiteLatch(Path(target))
