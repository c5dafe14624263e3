"""What the ledger and the tripwire stores share: versioned schemas, a small PostgreSQL
connection pool with typed errors that never show the password, and the durable-ack flush."""

from __future__ import annotations

import contextlib
import queue
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from fusion_ops.errors import StoreError, StoreSchemaError, StoreUnavailableError

CONNECT_TIMEOUT_S = 5
SCHEMA_TABLE = "schema_version"
# Every member's stores take this transaction-level advisory lock before creating or migrating
# (docs/state.md), so processes starting together never race on a schema.
SCHEMA_LOCK = "SELECT pg_advisory_xact_lock(353350405966)"  # 0x5245534F4E
_PASSWORD_IN_URL = re.compile(r"(://[^:/@]*):([^@/]*)@")
# Sessions commit asynchronously (a row lock is held for microseconds, not a disk flush); this
# synchronous transaction then writes one WAL record (a transactional logical message: no table,
# no lock, no special privilege), so its commit flushes the WAL past the caller's commit and
# concurrent callers share each flush. (A transaction that writes no WAL does not flush.)
FLUSH = (
    "BEGIN; SET LOCAL synchronous_commit = on; "
    "SELECT pg_logical_emit_message(true, 'fusion_ops', ''); COMMIT"
)


class Tx(Protocol):
    """One transaction; SQL uses ``?`` placeholders on both databases."""

    def run(self, sql: str, params: Sequence[Any] = ()) -> int: ...
    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None: ...
    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


def redact_url(url: str) -> str:
    """``url`` without its password: ``postgresql://user@host:port/db``."""
    return _PASSWORD_IN_URL.sub(r"\1@", url)


def is_postgres_url(target: object) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def prepare_schema(
    tx: Tx,
    has_table: Callable[[str], bool],
    where: str,
    *,
    component: str,
    version: int,
    create: Sequence[str],
    migrations: Mapping[int, Sequence[str]],
    sentinel: str,
    sqlite: bool = False,
) -> None:
    """Create ``component``'s tables in an empty database, migrate an older one in order, and
    refuse a newer one or tables (``sentinel``) that no version vouches for.

    As docs/state.md sets out for every member: PostgreSQL keeps one row per component in the
    database-wide ``schema_version`` table (the caller holds :data:`SCHEMA_LOCK`); a SQLite file
    holds one store, whose version is the file's ``PRAGMA user_version``.
    """
    if sqlite:
        found = (tx.one("PRAGMA user_version") or (0,))[0]
    else:
        if not has_table(SCHEMA_TABLE):
            tx.run(
                f"CREATE TABLE {SCHEMA_TABLE} (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
        row = tx.one(f"SELECT version FROM {SCHEMA_TABLE} WHERE component = ?", (component,))
        found = 0 if row is None else row[0]
    if not isinstance(found, int) or not 0 <= found <= version:
        raise StoreSchemaError(
            f"{where} holds schema version {found!r} of {component}; this fusion-ops supports "
            f"versions up to {version}: upgrade fusion-ops"
        )
    if found == version:
        return
    if found == 0:
        if has_table(sentinel):
            raise StoreSchemaError(
                f"{where} has a {sentinel} table but no schema version for {component}: "
                "not a store this fusion-ops created"
            )
        for statement in create:
            tx.run(statement)
    else:
        for step in range(found, version):
            for statement in migrations[step]:
                tx.run(statement)
    if sqlite:
        tx.run(f"PRAGMA user_version = {int(version)}")
    elif found == 0:
        tx.run(
            f"INSERT INTO {SCHEMA_TABLE} (component, version) VALUES (?, ?)", (component, version)
        )
    else:
        tx.run(f"UPDATE {SCHEMA_TABLE} SET version = ? WHERE component = ?", (version, component))


class PgTx:
    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._cursor.execute(sql.replace("?", "%s"), params)
        return int(self._cursor.rowcount)

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        self._cursor.execute(sql.replace("?", "%s"), params)
        row = self._cursor.fetchone()
        return None if row is None else tuple(row)

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._cursor.execute(sql.replace("?", "%s"), params)
        return [tuple(row) for row in self._cursor.fetchall()]


class PgPool:
    """Up to ``pool_size`` psycopg connections to one URL, shared by the threads of a process.

    A write transaction is acknowledged only after :data:`FLUSH` made it durable. A lost
    connection raises :class:`StoreUnavailableError` and is replaced on the next call (the idle
    ones are dropped with it); no message ever contains the password.
    """

    def __init__(self, url: str, what: str, *, pool_size: int = 8) -> None:
        if not is_postgres_url(url):
            raise StoreUnavailableError(f"{what} URL must start with postgresql://")
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
            raise StoreUnavailableError(f"pool_size must be an integer >= 1, got {pool_size!r}")
        self.url = url
        self.where = f"{what} {redact_url(url)}"
        self._lock = threading.Lock()
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(pool_size)
        self._all: list[Any] = []

    @staticmethod
    def has_table(tx: Tx) -> Callable[[str], bool]:
        return lambda name: tx.one("SELECT to_regclass(?) IS NOT NULL", (name,)) == (True,)

    def _connect(self) -> Any:
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise StoreUnavailableError(
                f"{self.where} needs psycopg: pip install 'fusion-ops[postgres]'"
            ) from exc
        try:
            conn = psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True)
            conn.execute("SET synchronous_commit = off")
        except psycopg.Error as exc:
            raise StoreUnavailableError(
                f"cannot connect to {self.where}: {self.clean(exc)}"
            ) from None
        with self._lock:
            self._all.append(conn)
        return conn

    def clean(self, exc: BaseException) -> str:
        """The driver's message, first line, with the password removed if it were ever in it."""
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        match = _PASSWORD_IN_URL.search(self.url)
        if match and match.group(2):
            text = text.replace(match.group(2), "***")
        return text

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Any]:
        """A pooled connection; a lost one is dropped (the next call connects anew) and every
        driver error becomes a :class:`StoreError` without the password."""
        import psycopg

        with self._slots:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._connect()
            try:
                yield conn
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                self._discard(conn)
                raise StoreUnavailableError(f"{self.where} failed: {self.clean(exc)}") from None
            except psycopg.Error as exc:
                self._idle.put(conn)
                raise StoreError(f"{self.where} failed: {self.clean(exc)}") from None
            except BaseException:
                self._idle.put(conn)
                raise
            self._idle.put(conn)

    def _discard(self, lost: Any) -> None:
        """Close a lost connection and the idle ones with it: after a server restart they are
        all dead, and each would otherwise fail one more call."""
        dead = [lost]
        while True:
            try:
                dead.append(self._idle.get_nowait())
            except queue.Empty:
                break
        with self._lock:
            for conn in dead:
                conn.close()
                self._all.remove(conn)

    @contextlib.contextmanager
    def tx(self, write: bool = True, single: bool = False) -> Iterator[PgTx]:
        """A transaction on a pooled connection, flushed (:meth:`flush`) after a ``write``;
        ``single``: each statement is its own transaction (one round trip instead of three,
        for one atomic statement)."""
        with self._connection() as conn:
            with conn.cursor() as cursor:
                if single:
                    yield PgTx(cursor)
                else:
                    with conn.transaction():
                        yield PgTx(cursor)
            if write:
                conn.execute(FLUSH)

    def flush(self) -> None:
        """Make every transaction committed so far durable (see :data:`FLUSH`)."""
        with self._connection() as conn:
            conn.execute(FLUSH)

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
