"""Where the energy ledger lives: in memory, in one SQLite file, or in PostgreSQL.

The :class:`~fusion_ops.governance.EnergyGovernor` decides *what* to admit (thresholds, approval
rules, multipliers); a :class:`LedgerStore` makes the decision atomic and durable. Every change is
one transaction:

* admission consumes the approval token (``DELETE ... RETURNING``), then reserves with a
  conditional ``UPDATE ... SET reserved = reserved + cost WHERE committed + reserved + cost <=
  budget * fraction`` and inserts the reservation. If the update matches no row, the transaction
  rolls back (the token is kept) and a second one counts the denial. No read-then-write in Python:
  two processes can never both take the last units.
* commit and release delete the reservation (``DELETE ... RETURNING cost``) and move its cost in
  the same transaction; a reservation can be settled once, by any process.
* a new period archives the old one in ``fusion_period_history`` and deletes its open
  reservations and approval tokens (tokens are bound to the period they were granted in).

On PostgreSQL the admissions that wait at the same moment in one process are committed as one
group (:class:`PostgresLedgerStore`): one call of ``fusion_ledger_admit_batch``, which checks
them in order under the ledger row's lock, the same condition as above, in the database.

Reservations in flight at a crash are **kept**: they hold budget (the safe side) until a process
commits or releases them by id, the period ends, or :meth:`LedgerStore.release_stale` returns
those older than an age the operator chooses. Releasing them at restart would be wrong with
several processes on one store: the others' reservations are live.

:func:`open_ledger_store` takes a path (SQLite, WAL, ``synchronous=FULL``) or a
``postgresql://`` URL (psycopg 3, the ``fusion-ops[postgres]`` extra). The schema version is kept
as docs/state.md sets out (PostgreSQL: the row ``fusion_ops.ledger`` of ``schema_version``;
SQLite: ``PRAGMA user_version``); an empty database gets the current schema, an older one is migrated
in order, a newer or foreign one, an unreachable server, refused credentials or a corrupted file
raise a :class:`~fusion_ops.errors.StoreError` at open, never a silent fresh ledger.
"""

from __future__ import annotations

import contextlib
import copy
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from fusion_ops._stores import SCHEMA_LOCK, PgPool, Tx, is_postgres_url, prepare_schema, redact_url
from fusion_ops.errors import (
    ReservationError,
    StoreCorruptedError,
    StoreError,
    StoreSchemaError,
    StoreUnavailableError,
)

__all__ = [
    "SCHEMA_VERSION",
    "SQLITE_SCHEMA_VERSION",
    "Admission",
    "AdmitResult",
    "LedgerState",
    "LedgerStore",
    "MemoryLedgerStore",
    "PostgresLedgerStore",
    "SQLiteLedgerStore",
    "Settled",
    "open_ledger_store",
    "redact_url",
]

SCHEMA_VERSION = 2  # PostgreSQL: version 1 plus the batch admission function
SQLITE_SCHEMA_VERSION = 1  # the SQLite file is unchanged (an older fusion-ops still opens it)
COMPONENT = "fusion_ops.ledger"

_SCHEMA_V1 = (
    """CREATE TABLE fusion_ledger (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        period TEXT NOT NULL,
        budget DOUBLE PRECISION NOT NULL CHECK (budget > 0 AND budget <= 1e15),
        committed DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (committed BETWEEN -1 AND 1e300),
        reserved DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (reserved BETWEEN -1 AND 1e300),
        overrun DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (overrun BETWEEN -1 AND 1e300),
        seq BIGINT NOT NULL DEFAULT 0,
        started_at DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE fusion_reservations (
        id TEXT PRIMARY KEY,
        period TEXT NOT NULL,
        cost DOUBLE PRECISION NOT NULL CHECK (cost BETWEEN 0 AND 1e15),
        emergency BOOLEAN NOT NULL,
        reviewed_by TEXT,
        approved_by TEXT,
        created_at DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE fusion_approvals (
        digest TEXT PRIMARY KEY,
        period TEXT NOT NULL,
        max_cost DOUBLE PRECISION NOT NULL CHECK (max_cost BETWEEN 0 AND 1e15),
        approver TEXT NOT NULL,
        granted_at DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE fusion_ledger_alerts (
        level TEXT PRIMARY KEY,
        fired_at DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE fusion_ledger_outcomes (
        outcome TEXT PRIMARY KEY,
        n BIGINT NOT NULL)""",
    """CREATE TABLE fusion_period_history (
        period TEXT NOT NULL,
        budget DOUBLE PRECISION NOT NULL,
        committed DOUBLE PRECISION NOT NULL,
        reserved DOUBLE PRECISION NOT NULL,
        overrun DOUBLE PRECISION NOT NULL,
        lapsed_reservations BIGINT NOT NULL,
        started_at DOUBLE PRECISION NOT NULL,
        closed_at DOUBLE PRECISION NOT NULL)""",
)
# PostgreSQL's group commit: the admissions of one batch in one call. It locks the ledger row
# (FOR UPDATE), checks each admission in the order given against the running totals with the
# single-admission condition, reserves each that fits, and writes the row once: updating one row
# k times in a transaction walks a chain of k versions each time. Returns the position (1-based)
# and the ledger totals after each admission it made; the others were denied.
_PG_ADMIT_BATCH = """CREATE FUNCTION fusion_ledger_admit_batch(
    costs DOUBLE PRECISION[], fractions DOUBLE PRECISION[], emergencies BOOLEAN[],
    reviewers TEXT[], nows DOUBLE PRECISION[])
RETURNS TABLE (pos INTEGER, t_period TEXT, t_budget DOUBLE PRECISION,
    t_committed DOUBLE PRECISION, t_reserved DOUBLE PRECISION, t_seq BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    admitted BIGINT := 0;
BEGIN
    SELECT l.period, l.budget, l.committed, l.reserved, l.seq
    INTO t_period, t_budget, t_committed, t_reserved, t_seq
    FROM fusion_ledger AS l WHERE l.id = 1 FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    FOR k IN 1 .. coalesce(array_length(costs, 1), 0) LOOP
        IF t_committed + t_reserved + costs[k] <= t_budget * fractions[k] THEN
            t_reserved := t_reserved + costs[k];
            t_seq := t_seq + 1;
            INSERT INTO fusion_reservations (id, period, cost, emergency, reviewed_by, created_at)
            VALUES (t_period || ':' || t_seq, t_period, costs[k], emergencies[k], reviewers[k],
                    nows[k]);
            admitted := admitted + 1;
            pos := k;
            RETURN NEXT;
        END IF;
    END LOOP;
    IF admitted > 0 THEN
        UPDATE fusion_ledger AS l SET reserved = t_reserved, seq = t_seq WHERE l.id = 1;
        INSERT INTO fusion_ledger_outcomes AS o (outcome, n) VALUES ('admitted', admitted)
        ON CONFLICT (outcome) DO UPDATE SET n = o.n + admitted;
    END IF;
END
$$"""
# MIGRATIONS[n] takes a version-n schema to version n + 1. PostgreSQL's version 2 adds the batch
# admission function; SQLite has had no migration yet.
SQLITE_MIGRATIONS: dict[int, tuple[str, ...]] = {}
PG_MIGRATIONS: dict[int, tuple[str, ...]] = {1: (_PG_ADMIT_BATCH,)}
_TOTALS = "period, budget, committed, reserved, seq"


@dataclass(frozen=True)
class Totals:
    """The ledger row as a transaction left it."""

    period: str
    budget: float
    committed: float
    reserved: float
    seq: int = 0


@dataclass(frozen=True)
class LedgerState:
    period: str
    budget: float
    committed: float
    reserved: float
    overrun: float
    open_reservations: int
    alerts_fired: tuple[str, ...]
    outcomes: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Admission:
    """One request as the governor checked it: the store only makes it atomic.

    ``limit_fraction`` is the share of the budget that ``committed + reserved + cost`` may reach
    for this request (the lowest of the limits that apply to it); ``approval_digest`` is set when
    the request needs an approval token covering ``cost``.
    """

    cost: float
    emergency: bool
    reviewed_by: str | None
    approval_digest: str | None
    limit_fraction: float
    alert_levels: tuple[tuple[str, float], ...]
    now: float


@dataclass(frozen=True)
class AdmitResult:
    totals: Totals
    reservation_id: str | None = None
    approver: str | None = None
    fired: tuple[str, ...] = ()
    denied: tuple[str, str] | None = None  # (reason, message)


@dataclass(frozen=True)
class Settled:
    totals: Totals
    cost: float
    actual: float
    fired: tuple[str, ...] = ()


Classifier = Callable[[Totals], tuple[str, str]]


class LedgerStore(Protocol):
    """The ledger's state and its atomic operations (see the module docstring)."""

    def open(self, period: str, budget: float, now: float) -> Totals: ...
    def start_period(self, period: str, budget: float | None, now: float) -> tuple[int, int]: ...
    def grant(self, digest: str, max_cost: float, approver: str, now: float) -> None: ...
    def admit(self, admission: Admission, classify: Classifier) -> AdmitResult: ...
    def settle(
        self,
        rid: str,
        actual: float | None,
        alert_levels: tuple[tuple[str, float], ...],
        now: float,
    ) -> Settled: ...
    def release(self, rid: str) -> Totals: ...
    def count(self, outcome: str) -> None: ...
    def state(self) -> LedgerState: ...
    def release_stale(self, created_before: float) -> int: ...
    def close(self) -> None: ...


def _crossed(totals: Totals, levels: tuple[tuple[str, float], ...]) -> list[str]:
    used = (totals.committed + totals.reserved) / totals.budget * 100
    return [level for level, threshold in levels if used >= threshold]


def _unknown(rid: str) -> ReservationError:
    return ReservationError(
        f"reservation {rid[:80]!r} is unknown, already settled or from a closed period"
    )


# ---------------------------------------------------------------------------------- in memory
@dataclass
class _Held:
    cost: float
    created_at: float


class MemoryLedgerStore:
    """The ledger in this process's memory (the default): fast, lost at exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals = Totals("", 1.0, 0.0, 0.0)
        self._overrun = 0.0
        self._open: dict[str, _Held] = {}
        self._approvals: dict[str, tuple[float, str]] = {}
        self._fired: list[str] = []
        self._outcomes: dict[str, int] = {}
        self._seq = 0

    def open(self, period: str, budget: float, now: float) -> Totals:
        """Seed an empty ledger; a ledger already opened is resumed, as in the databases."""
        if not self._totals.period:
            self.start_period(period, budget, now)
        return self._totals

    def start_period(self, period: str, budget: float | None, now: float) -> tuple[int, int]:
        with self._lock:
            lapsed = (len(self._open), len(self._approvals))
            amount = self._totals.budget if budget is None else budget
            self._totals = Totals(period, amount, 0.0, 0.0)
            self._overrun = 0.0
            self._open.clear()
            self._approvals.clear()
            self._fired.clear()
            self._outcomes.clear()
            return lapsed

    def grant(self, digest: str, max_cost: float, approver: str, now: float) -> None:
        with self._lock:
            self._approvals[digest] = (max_cost, approver)

    def admit(self, admission: Admission, classify: Classifier) -> AdmitResult:
        with self._lock:
            t = self._totals
            approver = None
            if admission.approval_digest is not None:
                approval = self._approvals.get(admission.approval_digest)
                if approval is None or approval[0] < admission.cost:
                    return self._deny(("approval_required", ""))
                approver = approval[1]
            if t.committed + t.reserved + admission.cost > t.budget * admission.limit_fraction:
                return self._deny(classify(t))
            if admission.approval_digest is not None:
                del self._approvals[admission.approval_digest]
            self._seq += 1
            rid = f"{t.period}:{self._seq}"
            self._open[rid] = _Held(admission.cost, admission.now)
            self._totals = Totals(
                t.period, t.budget, t.committed, t.reserved + admission.cost, self._seq
            )
            self._bump("admitted")
            fired = self._fire(admission.alert_levels)
            return AdmitResult(self._totals, rid, approver, fired)

    def _deny(self, denied: tuple[str, str]) -> AdmitResult:
        self._bump(denied[0])
        return AdmitResult(self._totals, denied=denied)

    def _bump(self, outcome: str) -> None:
        self._outcomes[outcome] = self._outcomes.get(outcome, 0) + 1

    def _fire(self, levels: tuple[tuple[str, float], ...]) -> tuple[str, ...]:
        new = [level for level in _crossed(self._totals, levels) if level not in self._fired]
        self._fired.extend(new)
        return tuple(new)

    def settle(
        self,
        rid: str,
        actual: float | None,
        alert_levels: tuple[tuple[str, float], ...],
        now: float,
    ) -> Settled:
        with self._lock:
            held = self._open.pop(rid, None)
            if held is None:
                raise _unknown(rid)
            spent = held.cost if actual is None else actual
            t = self._totals
            self._totals = Totals(
                t.period, t.budget, t.committed + spent, t.reserved - held.cost, t.seq
            )
            self._overrun += max(0.0, spent - held.cost)
            return Settled(self._totals, held.cost, spent, self._fire(alert_levels))

    def release(self, rid: str) -> Totals:
        with self._lock:
            held = self._open.pop(rid, None)
            if held is None:
                raise _unknown(rid)
            t = self._totals
            self._totals = Totals(t.period, t.budget, t.committed, t.reserved - held.cost, t.seq)
            return self._totals

    def count(self, outcome: str) -> None:
        with self._lock:
            self._bump(outcome)

    def state(self) -> LedgerState:
        with self._lock:
            t = self._totals
            return LedgerState(
                t.period,
                t.budget,
                t.committed,
                t.reserved,
                self._overrun,
                len(self._open),
                tuple(self._fired),
                dict(self._outcomes),
            )

    def release_stale(self, created_before: float) -> int:
        with self._lock:
            stale = [rid for rid, held in self._open.items() if held.created_at < created_before]
            for rid in stale:
                held = self._open.pop(rid)
                t = self._totals
                self._totals = Totals(
                    t.period, t.budget, t.committed, t.reserved - held.cost, t.seq
                )
            return len(stale)

    def close(self) -> None:
        """Nothing to close."""


# ---------------------------------------------------------------------------------- SQL
def _row_totals(row: tuple[Any, ...] | None) -> Totals:
    """The ledger row, refused unless every amount is a finite number and the budget positive
    (the CHECK constraints keep NaN and inf out, whose comparisons would admit anything)."""
    if row is None:
        raise StoreSchemaError("the ledger row is missing: the store was not opened")
    period, budget, committed, reserved, seq = row
    amounts = (budget, committed, reserved)
    if not all(isinstance(x, (int, float)) and math.isfinite(x) for x in amounts) or budget <= 0:
        raise StoreCorruptedError(f"the ledger row holds invalid amounts {amounts!r}")
    return Totals(str(period), float(budget), float(committed), float(reserved), int(seq))


class _DeniedError(Exception):
    """Rolls an admission back; carries the reason when it is already known."""

    def __init__(self, denied: tuple[str, str] | None) -> None:
        super().__init__()
        self.denied = denied


class _SQLLedgerStore:
    """The SQL shared by both databases, written with ``?`` placeholders; subclasses provide a
    transaction (``_tx``) that raises :class:`StoreError` subclasses for database failures."""

    _lock: threading.Lock

    def _tx(self, write: bool = True) -> contextlib.AbstractContextManager[Tx]:
        raise NotImplementedError

    def _prepare_schema(
        self, tx: Tx, has_table: Callable[[str], bool], where: str, sqlite: bool = False
    ) -> None:
        prepare_schema(
            tx,
            has_table,
            f"{where} (ledger)",
            component=COMPONENT,
            version=SQLITE_SCHEMA_VERSION if sqlite else SCHEMA_VERSION,
            create=_SCHEMA_V1 if sqlite else (*_SCHEMA_V1, _PG_ADMIT_BATCH),
            migrations=SQLITE_MIGRATIONS if sqlite else PG_MIGRATIONS,
            sentinel="fusion_ledger",
            sqlite=sqlite,
        )

    # operations ----------------------------------------------------------------------
    def open(self, period: str, budget: float, now: float) -> Totals:
        with self._tx() as tx:
            tx.run(
                "INSERT INTO fusion_ledger (id, period, budget, started_at) VALUES (1, ?, ?, ?) "
                "ON CONFLICT (id) DO NOTHING",
                (period, budget, now),
            )
            return self._totals(tx)

    def _totals(self, tx: Tx) -> Totals:
        return _row_totals(tx.one(f"SELECT {_TOTALS} FROM fusion_ledger WHERE id = 1"))

    @staticmethod
    def _moved(tx: Tx, assignments: str, params: Sequence[Any]) -> Totals:
        """Apply ``assignments`` to the ledger row and return the new totals."""
        return _row_totals(
            tx.one(
                f"UPDATE fusion_ledger SET {assignments} WHERE id = 1 RETURNING {_TOTALS}", params
            )
        )

    def start_period(self, period: str, budget: float | None, now: float) -> tuple[int, int]:
        with self._tx() as tx:
            lapsed = tx.run("DELETE FROM fusion_reservations")
            tokens = tx.run("DELETE FROM fusion_approvals")
            tx.run(
                "INSERT INTO fusion_period_history (period, budget, committed, reserved, overrun, "
                "lapsed_reservations, started_at, closed_at) SELECT period, budget, committed, "
                "reserved, overrun, ?, started_at, ? FROM fusion_ledger WHERE id = 1",
                (lapsed, now),
            )
            tx.run("DELETE FROM fusion_ledger_alerts")
            tx.run("DELETE FROM fusion_ledger_outcomes")
            tx.run(
                "UPDATE fusion_ledger SET period = ?, budget = COALESCE(?, budget), "
                "committed = 0, reserved = 0, overrun = 0, started_at = ? WHERE id = 1",
                (period, budget, now),
            )
            return lapsed, tokens

    def grant(self, digest: str, max_cost: float, approver: str, now: float) -> None:
        with self._tx() as tx:
            tx.run(
                "INSERT INTO fusion_approvals (digest, period, max_cost, approver, granted_at) "
                "SELECT ?, period, ?, ?, ? FROM fusion_ledger WHERE id = 1",
                (digest, max_cost, approver, now),
            )

    def admit(self, admission: Admission, classify: Classifier) -> AdmitResult:
        try:
            with self._tx() as tx:
                approver = None
                if admission.approval_digest is not None:
                    row = tx.one(
                        "DELETE FROM fusion_approvals WHERE digest = ? AND max_cost >= ? AND "
                        "period = (SELECT period FROM fusion_ledger WHERE id = 1) "
                        "RETURNING approver",
                        (admission.approval_digest, admission.cost),
                    )
                    if row is None:
                        raise _DeniedError(("approval_required", ""))
                    approver = row[0]
                row = tx.one(
                    "UPDATE fusion_ledger SET reserved = reserved + ?, seq = seq + 1 "
                    "WHERE id = 1 AND committed + reserved + ? <= budget * ? "
                    f"RETURNING {_TOTALS}",
                    (admission.cost, admission.cost, admission.limit_fraction),
                )
                if row is None:
                    raise _DeniedError(None)
                totals = _row_totals(row)
                rid = f"{totals.period}:{totals.seq}"
                tx.run(
                    "INSERT INTO fusion_reservations (id, period, cost, emergency, reviewed_by, "
                    "approved_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        rid,
                        totals.period,
                        admission.cost,
                        admission.emergency,
                        admission.reviewed_by,
                        approver,
                        admission.now,
                    ),
                )
                self._bump(tx, "admitted")
                fired = self._fire(tx, totals, admission.alert_levels, admission.now)
                return AdmitResult(totals, rid, approver, fired)
        except _DeniedError as denied:
            with self._tx() as tx:
                totals = self._totals(tx)
                reason = denied.denied or classify(totals)
                self._bump(tx, reason[0])
                return AdmitResult(totals, denied=reason)

    @staticmethod
    def _bump(tx: Tx, outcome: str) -> None:
        tx.run(
            "INSERT INTO fusion_ledger_outcomes (outcome, n) VALUES (?, 1) "
            "ON CONFLICT (outcome) DO UPDATE SET n = fusion_ledger_outcomes.n + 1",
            (outcome,),
        )

    @staticmethod
    def _fire(
        tx: Tx, totals: Totals, levels: tuple[tuple[str, float], ...], now: float
    ) -> tuple[str, ...]:
        """Insert each crossed level once per period; the rows this transaction inserted fired."""
        return tuple(
            level
            for level in _crossed(totals, levels)
            if tx.run(
                "INSERT INTO fusion_ledger_alerts (level, fired_at) VALUES (?, ?) "
                "ON CONFLICT (level) DO NOTHING",
                (level, now),
            )
        )

    def settle(
        self,
        rid: str,
        actual: float | None,
        alert_levels: tuple[tuple[str, float], ...],
        now: float,
    ) -> Settled:
        with self._tx() as tx:
            row = tx.one("DELETE FROM fusion_reservations WHERE id = ? RETURNING cost", (rid,))
            if row is None:
                raise _unknown(rid)
            cost = float(row[0])
            spent = cost if actual is None else actual
            totals = self._moved(
                tx,
                "reserved = reserved - ?, committed = committed + ?, overrun = overrun + ?",
                (cost, spent, max(0.0, spent - cost)),
            )
            return Settled(totals, cost, spent, self._fire(tx, totals, alert_levels, now))

    def release(self, rid: str) -> Totals:
        with self._tx() as tx:
            row = tx.one("DELETE FROM fusion_reservations WHERE id = ? RETURNING cost", (rid,))
            if row is None:
                raise _unknown(rid)
            return self._moved(tx, "reserved = reserved - ?", (row[0],))

    def count(self, outcome: str) -> None:
        with self._tx() as tx:
            self._bump(tx, outcome)

    def state(self) -> LedgerState:
        with self._tx(write=False) as tx:
            row = tx.one(
                "SELECT period, budget, committed, reserved, overrun FROM fusion_ledger "
                "WHERE id = 1"
            )
            if row is None:
                raise StoreSchemaError("the ledger row is missing: open the store first")
            (open_count,) = tx.one("SELECT COUNT(*) FROM fusion_reservations") or (0,)
            alerts = tx.all("SELECT level FROM fusion_ledger_alerts ORDER BY fired_at, level")
            outcomes = tx.all("SELECT outcome, n FROM fusion_ledger_outcomes")
            period, budget, committed, reserved, overrun = row
            return LedgerState(
                period,
                float(budget),
                float(committed),
                float(reserved),
                float(overrun),
                open_reservations=int(open_count),
                alerts_fired=tuple(level for (level,) in alerts),
                outcomes={name: int(n) for name, n in outcomes},
            )

    def release_stale(self, created_before: float) -> int:
        with self._tx() as tx:
            rows = tx.all(
                "DELETE FROM fusion_reservations WHERE created_at < ? RETURNING cost",
                (created_before,),
            )
            if rows:
                tx.run(
                    "UPDATE fusion_ledger SET reserved = reserved - ? WHERE id = 1",
                    (sum(float(cost) for (cost,) in rows),),
                )
            return len(rows)


# ---------------------------------------------------------------------------------- SQLite
class SQLiteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._conn.execute(sql, params).rowcount

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        cursor = self._conn.execute(sql, params)
        row = cursor.fetchone()
        cursor.fetchall()  # finish the statement (a RETURNING statement runs to completion)
        return None if row is None else tuple(row)

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._conn.execute(sql, params).fetchall()]


class SQLiteLedgerStore(_SQLLedgerStore):
    """The ledger in one SQLite file (WAL): survives restarts; several processes on one host
    share it, each write transaction taking the database's write lock (``BEGIN IMMEDIATE``)."""

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 10.0) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._busy_timeout_s = busy_timeout_s
        if self.path.is_dir():
            raise StoreUnavailableError(f"ledger store {self.path} is a directory, not a file")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                self.path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailableError(f"cannot open ledger store {self.path}: {exc}") from exc
        try:
            with self._tx(setup=True) as tx:
                self._prepare_schema(tx, self._has_table, f"ledger store {self.path}", sqlite=True)
        except BaseException:
            self._conn.close()
            raise

    def _has_table(self, name: str) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone()
        return row is not None

    @contextlib.contextmanager
    def _tx(self, write: bool = True, setup: bool = False) -> Iterator[Tx]:
        with self._lock:
            try:
                if setup:
                    self._switch_to_wal()
                    self._conn.execute("PRAGMA synchronous=FULL")
                    if self._conn.execute("PRAGMA quick_check").fetchone() != ("ok",):
                        raise sqlite3.DatabaseError("quick_check failed")
                self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    raise StoreUnavailableError(
                        f"ledger store {self.path} is locked by another process: {exc}"
                    ) from exc
                raise self._corrupted(exc) from exc
            except sqlite3.DatabaseError as exc:
                raise self._corrupted(exc) from exc
            try:
                yield SQLiteTx(self._conn)
            except sqlite3.Error as exc:
                self._conn.rollback()
                raise StoreUnavailableError(f"ledger store {self.path} failed: {exc}") from exc
            except BaseException:
                self._conn.rollback()
                raise
            try:
                self._conn.commit()
            except sqlite3.Error as exc:
                self._conn.rollback()
                raise StoreUnavailableError(
                    f"ledger store {self.path}: commit failed: {exc}"
                ) from exc

    def _switch_to_wal(self) -> None:
        """Two processes opening a new file race to convert it, and SQLite answers the loser
        "database is locked" at once (waiting in its busy handler could deadlock): retry."""
        deadline = time.monotonic() + self._busy_timeout_s
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode=WAL").fetchall()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or not time.monotonic() < deadline:  # NaN: no wait
                    raise
                time.sleep(0.01)

    def _corrupted(self, exc: Exception) -> StoreError:
        return StoreCorruptedError(
            f"ledger store {self.path} is not a readable SQLite database ({exc}); it was left "
            "untouched: restore it from a backup or move it aside to start an empty ledger"
        )

    def close(self) -> None:
        with self._lock:
            self._conn.close()


# ---------------------------------------------------------------------------------- PostgreSQL
_PG_ADMIT = f"""WITH upd AS (
    UPDATE fusion_ledger SET reserved = reserved + ?, seq = seq + 1
    WHERE id = 1 AND committed + reserved + ? <= budget * ? RETURNING {_TOTALS}
), ins AS (
    INSERT INTO fusion_reservations (id, period, cost, emergency, reviewed_by, created_at)
    SELECT period || ':' || seq, period, ?, ?::boolean, ?::text, ?::double precision FROM upd
), counted AS (
    INSERT INTO fusion_ledger_outcomes (outcome, n) SELECT 'admitted', 1 FROM upd
    ON CONFLICT (outcome) DO UPDATE SET n = fusion_ledger_outcomes.n + 1
)
SELECT {_TOTALS} FROM upd"""


class _Job:
    """One admission waiting for the group commit, and its answer once its batch is durable."""

    __slots__ = ("admission", "classify", "outcome", "taken")

    def __init__(self, admission: Admission, classify: Classifier) -> None:
        self.admission = admission
        self.classify = classify
        self.taken = False  # a writer has it in a batch
        self.outcome: AdmitResult | BaseException | None = None


class _GroupCommit:
    """One writer at a time per store: a caller that finds no batch committing takes every
    admission waiting at that moment (its own included) and commits them as one batch; callers
    that arrive meanwhile wait for their own answer or lead the next batch. The flush that makes
    a batch durable runs after the next batch may start committing, so batches overlap on the
    disk and not on the ledger row. No thread of its own, so nothing to stop at close."""

    def __init__(
        self,
        commit: Callable[[list[_Job]], list[AdmitResult]],
        flush: Callable[[], None],
        alone: Callable[[_Job], AdmitResult] | None = None,
    ) -> None:
        self._commit = commit
        self._flush = flush
        self._alone = alone
        self._cond = threading.Condition()
        self._waiting: list[_Job] = []
        self._busy = False

    def submit(self, admission: Admission, classify: Classifier) -> AdmitResult:
        job = _Job(admission, classify)
        with self._cond:
            self._waiting.append(job)
            while job.outcome is None and (job.taken or self._busy):
                self._cond.wait()
            lead = job.outcome is None
            if lead:
                self._busy = True
                batch, self._waiting = self._waiting, []
                for taken in batch:
                    taken.taken = True
        if lead:
            self._lead(batch)
        if isinstance(job.outcome, BaseException):
            # each caller raises its own copy: one exception object raised in several threads
            # would collect all their tracebacks
            raise job.outcome if lead else copy.copy(job.outcome).with_traceback(None)
        assert job.outcome is not None
        return job.outcome

    def _lead(self, batch: list[_Job]) -> None:
        outcomes: Sequence[AdmitResult | BaseException] = [
            StoreUnavailableError("the admission batch was interrupted; its commit is unknown")
        ] * len(batch)
        try:
            if len(batch) == 1 and self._alone is not None:
                # nobody to share the flush with: one admission alone is a round trip less
                try:
                    outcomes = [self._alone(batch[0])]
                finally:
                    with self._cond:
                        self._busy = False
                        self._cond.notify_all()
            else:
                try:
                    committed = self._commit(batch)
                finally:
                    with self._cond:  # the next batch may commit while this one flushes
                        self._busy = False
                        self._cond.notify_all()
                self._flush()
                outcomes = committed
        except Exception as exc:  # every caller of the batch hears the store's error
            outcomes = [exc] * len(batch)
        finally:  # also on KeyboardInterrupt: the others must not wait forever
            with self._cond:
                for job, outcome in zip(batch, outcomes, strict=True):
                    job.outcome = outcome
                self._cond.notify_all()


class PostgresLedgerStore(_SQLLedgerStore):
    """The ledger in PostgreSQL, for several processes or replicas sharing one budget.

    The conditional updates run at READ COMMITTED: PostgreSQL re-evaluates the ``WHERE`` on the
    latest row version after waiting for the row lock, so admissions serialise on the ledger
    row. To keep that row lock for microseconds rather than a disk flush, the session commits
    with ``synchronous_commit = off`` and after each write the store runs one synchronous
    transaction of its own (``_stores.FLUSH``), whose commit flushes the WAL past it:
    the caller hears "admitted" only once the admission is durable, and concurrent callers
    share each flush. If the server crashes in between, the admission (and everything after it
    in the WAL) is lost together and was never acknowledged; if only the flush fails, the
    caller gets :class:`StoreUnavailableError` and the reservation may be kept (budget held: the
    safe side). Up to ``pool_size`` connections serve the threads of one process; a lost
    connection raises :class:`StoreUnavailableError` (nothing admitted) and is replaced.

    **Group commit** (``group_commit=True``, the default): admissions without an approval token
    that wait at the same moment in one process run as one statement, its own transaction:
    ``fusion_ledger_admit_batch`` locks the ledger row and checks them in arrival order with
    the single-admission condition; then one flush. Each caller gets its own admitted/denied
    answer, and a failure before the flush returns acknowledges none of them (what was
    committed holds budget: the safe side). The row is locked once per batch instead of once
    per admission; docs/state.md has the measurements and the trade-off (one process's commits
    queue behind one writer). A batch of one runs as an admission alone, so a lone caller pays
    nothing for the grouping. ``group_commit=False`` runs each admission alone (the
    benchmark's peer).
    """

    def __init__(self, url: str, *, pool_size: int = 8, group_commit: bool = True) -> None:
        self._pool = PgPool(url, "ledger store", pool_size=pool_size)
        self.url = url
        self._lock = threading.Lock()
        self._group = (
            _GroupCommit(
                self._admit_batch,
                self._pool.flush,
                lambda job: self._admit_alone(job.admission, job.classify),
            )
            if group_commit
            else None
        )
        with self._tx() as tx:
            tx.run(SCHEMA_LOCK)
            self._prepare_schema(tx, self._pool.has_table(tx), self._pool.where)

    def _tx(
        self, write: bool = True, single: bool = False
    ) -> contextlib.AbstractContextManager[Tx]:
        return self._pool.tx(write=write, single=single)

    def admit(self, admission: Admission, classify: Classifier) -> AdmitResult:
        """Admissions that need an approval token take the general path (token and budget in
        one transaction); the others go through the group commit, or alone without it."""
        if admission.approval_digest is not None:
            return super().admit(admission, classify)
        if self._group is None:
            return self._admit_alone(admission, classify)
        return self._group.submit(admission, classify)

    @staticmethod
    def _params(admission: Admission) -> tuple[Any, ...]:
        return (
            admission.cost,
            admission.cost,
            admission.limit_fraction,
            admission.cost,
            admission.emergency,
            admission.reviewed_by,
            admission.now,
        )

    def _admitted(self, tx: Tx, admission: Admission, row: tuple[Any, ...]) -> AdmitResult:
        totals = _row_totals(row)
        fired = self._fire(tx, totals, admission.alert_levels, admission.now)
        return AdmitResult(totals, f"{totals.period}:{totals.seq}", None, fired)

    def _admit_alone(self, admission: Admission, classify: Classifier) -> AdmitResult:
        """One statement when it fits, the alert levels it crossed after it; a denial takes the
        general path, which rechecks atomically and classifies it."""
        with self._tx(single=True) as tx:
            row = tx.one(_PG_ADMIT, self._params(admission))
            if row is not None:
                return self._admitted(tx, admission, row)
        return super().admit(admission, classify)

    def _admit_batch(self, batch: list[_Job]) -> list[AdmitResult]:
        """The batch in one statement, its own transaction (one round trip; committed, not yet
        flushed: the group commit flushes); then, as for one admission alone, the alert levels
        each admission crossed, and each denial classified against the ledger as the batch left
        it and counted."""
        admissions = [job.admission for job in batch]
        with self._pool.tx(write=False, single=True) as tx:
            rows = tx.all(
                "SELECT * FROM fusion_ledger_admit_batch(?::float8[], ?::float8[], "
                "?::boolean[], ?::text[], ?::float8[])",
                (
                    [a.cost for a in admissions],
                    [a.limit_fraction for a in admissions],
                    [a.emergency for a in admissions],
                    [a.reviewed_by for a in admissions],
                    [a.now for a in admissions],
                ),
            )
            made = {int(row[0]) - 1: row[1:] for row in rows}
            after: Totals | None = None
            results: list[AdmitResult] = []
            for i, job in enumerate(batch):
                if i in made:
                    results.append(self._admitted(tx, job.admission, made[i]))
                    continue
                after = after or self._totals(tx)
                reason = job.classify(after)
                self._bump(tx, reason[0])
                results.append(AdmitResult(after, denied=reason))
        return results

    def close(self) -> None:
        self._pool.close()


def open_ledger_store(target: str | Path) -> SQLiteLedgerStore | PostgresLedgerStore:
    """A ``postgresql://`` URL opens PostgreSQL; anything else is the SQLite file's path."""
    if is_postgres_url(target):
        return PostgresLedgerStore(str(target))
    if not isinstance(target, (str, Path)) or not str(target).strip():
        raise StoreUnavailableError(
            f"ledger store must be a file path or a postgresql:// URL, got {type(target).__name__}"
        )
    return SQLiteLedgerStore(target)
