"""The budget tripwire: consecutive token-delta breaches latch a downgrade; state survives crashes.

A run *breaches* when its token delta (percent vs baseline) is above ``breach_threshold``.
``consecutive_limit`` breaches in a row latch the downgrade: :meth:`BudgetTripwire.parameters`
then serves the reduced parameter set (``downgrade_parameters``) until :meth:`reset`, or, with
``auto_recovery``, until ``recovery_clean_runs`` consecutive clean runs.

Persistence: the state is a small JSON file, rewritten atomically (temp file in the same
directory, fsync, ``os.replace``, fsync of the directory) while holding an exclusive ``flock`` on
a sibling ``.lock`` file, so concurrent processes serialise and a ``kill -9`` at any instant
leaves either the old or the new state. This file is the latch's embedded store (it is already
crash-safe, so there is no SQLite variant); for replicas on several hosts, a ``postgresql://``
URL keeps the same JSON in one row of ``fusion_tripwire``, read and rewritten in one
transaction under ``SELECT ... FOR UPDATE`` and acknowledged once durable. A state file that cannot be parsed is moved aside
(``<name>.corrupt-<timestamp>``), logged and counted, and the tripwire restarts *latched*
(reason ``state_corrupted``): losing a latch silently would be the unsafe failure, so an operator
must look and reset (in PostgreSQL the bad value is copied to ``fusion_tripwire_corrupt``). An
unreachable database, refused credentials or a newer schema raise a
:class:`~fusion_ops.errors.StoreError`. POSIX only (``fcntl``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from fusion_ops import _validate
from fusion_ops._stores import SCHEMA_LOCK, PgPool, Tx, is_postgres_url, prepare_schema
from fusion_ops.config import TripwireConfig, load_governance_config
from fusion_ops.errors import InvalidInputError
from fusion_ops.logs import log_event
from fusion_ops.metrics import TripwireMetrics
from fusion_ops.report import reject_json_constant

__all__ = ["BudgetTripwire", "TripwireState", "TripwireStatus"]

log = logging.getLogger("fusion_ops.tripwire")
STATE_VERSION = 1
MAX_STATE_BYTES = 1_000_000
HISTORY = 20
_TEMP_PREFIX = ".tripwire-tmp-"


@dataclass(frozen=True)
class TripwireState:
    version: int = STATE_VERSION
    consecutive_breaches: int = 0
    downgraded: bool = False
    downgrade_reason: str | None = None
    clean_runs_since_downgrade: int = 0
    total_runs: int = 0
    total_breaches: int = 0
    last_token_delta: float | None = None
    recent_deltas: tuple[float, ...] = ()
    last_corruption: str | None = None
    updated_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["recent_deltas"] = list(self.recent_deltas)
        return data


@dataclass(frozen=True)
class TripwireStatus:
    state: TripwireState
    breached: bool
    latched_now: bool
    recovered_now: bool
    corrupt_file_moved_to: str | None


def _parse_state(raw: bytes) -> TripwireState:
    """Strict parse; ValueError on anything unexpected."""
    data = json.loads(raw.decode("utf-8"), parse_constant=reject_json_constant)
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        raise ValueError("not a version-1 tripwire state object")
    expected = {f for f in TripwireState.__dataclass_fields__}
    if set(data) != expected:
        raise ValueError(f"keys {sorted(set(data) ^ expected)} do not match the state schema")
    ints = ("consecutive_breaches", "clean_runs_since_downgrade", "total_runs", "total_breaches")
    for key in ints:
        if isinstance(data[key], bool) or not isinstance(data[key], int) or data[key] < 0:
            raise ValueError(f"{key} must be an integer >= 0")
    if not isinstance(data["downgraded"], bool):
        raise ValueError("downgraded must be a bool")
    deltas = data["recent_deltas"]
    if not isinstance(deltas, list) or not all(
        isinstance(d, (int, float)) and not isinstance(d, bool) for d in deltas
    ):
        raise ValueError("recent_deltas must be a list of numbers")
    for key in ("downgrade_reason", "last_corruption", "updated_at"):
        if data[key] is not None and not isinstance(data[key], str):
            raise ValueError(f"{key} must be a string or null")
    last = data["last_token_delta"]
    if last is not None and (isinstance(last, bool) or not isinstance(last, (int, float))):
        raise ValueError("last_token_delta must be a number or null")
    data["recent_deltas"] = tuple(float(d) for d in deltas)
    return TripwireState(**data)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


class _FileBackend:
    """The state as one JSON file, replaced atomically under an exclusive ``flock``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_path = path.with_name(path.name + ".lock")
        path.parent.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with open(self._lock_path, "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def read(self) -> bytes | None:
        """The raw state (call under the lock), or None when there is none yet."""
        for stale in self.path.parent.glob(f"{_TEMP_PREFIX}{self.path.name}*"):
            stale.unlink(missing_ok=True)  # left by a writer killed mid-write; we hold the lock
        try:
            with self.path.open("rb") as handle:
                return handle.read(MAX_STATE_BYTES + 1)
        except FileNotFoundError:
            return None

    def move_aside(self, raw: bytes) -> str:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        moved = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        os.replace(self.path, moved)
        return str(moved)

    def write(self, payload: bytes) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f"{_TEMP_PREFIX}{self.path.name}", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


_PG_SCHEMA = (
    "CREATE TABLE fusion_tripwire (name TEXT PRIMARY KEY, state BYTEA)",
    """CREATE TABLE fusion_tripwire_corrupt (
        name TEXT NOT NULL, state BYTEA NOT NULL, moved_at TIMESTAMPTZ NOT NULL DEFAULT now())""",
)


class _PostgresBackend:
    """The state as one row of ``fusion_tripwire``, read and rewritten in one transaction that
    holds the row lock (``SELECT ... FOR UPDATE``), so replicas serialise like processes do on
    the file lock."""

    def __init__(self, url: str, name: str) -> None:
        self._pool = PgPool(url, "tripwire store")
        self.path = None
        self._name = name
        self._tx: Tx | None = None
        with self._pool.tx() as tx:
            tx.run(SCHEMA_LOCK)
            prepare_schema(
                tx,
                self._pool.has_table(tx),
                f"{self._pool.where} (tripwire)",
                component="fusion_ops.tripwire",
                version=STATE_VERSION,
                create=_PG_SCHEMA,
                migrations={},
                sentinel="fusion_tripwire",
            )

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with self._pool.tx() as tx:
            tx.run(
                "INSERT INTO fusion_tripwire (name) VALUES (?) ON CONFLICT (name) DO NOTHING",
                (self._name,),
            )
            self._tx = tx
            try:
                yield
            finally:
                self._tx = None

    def _current(self) -> Tx:
        assert self._tx is not None, "call under locked()"
        return self._tx

    def read(self) -> bytes | None:
        row = self._current().one(
            "SELECT state FROM fusion_tripwire WHERE name = ? FOR UPDATE", (self._name,)
        )
        return None if row is None or row[0] is None else bytes(row[0])

    def move_aside(self, raw: bytes) -> str:
        tx = self._current()
        tx.run("INSERT INTO fusion_tripwire_corrupt (name, state) VALUES (?, ?)", (self._name, raw))
        tx.run("UPDATE fusion_tripwire SET state = NULL WHERE name = ?", (self._name,))
        return f"{self._pool.where} table fusion_tripwire_corrupt (name {self._name!r})"

    def write(self, payload: bytes) -> None:
        self._current().run(
            "UPDATE fusion_tripwire SET state = ? WHERE name = ?", (payload, self._name)
        )


class BudgetTripwire:
    """Tripwire whose state lives in ``state_path`` (a JSON file) or, given a
    ``postgresql://`` URL, in one row of that database (shared by replicas); safe across
    threads and processes."""

    def __init__(
        self,
        state_path: str | Path,
        config: TripwireConfig | None = None,
        *,
        registry: CollectorRegistry | None = None,
        name: str = "default",
    ) -> None:
        self.config = config or load_governance_config().budget_tripwire
        self._metrics = TripwireMetrics(registry) if registry is not None else None
        self._backend: _FileBackend | _PostgresBackend
        if is_postgres_url(state_path):
            self._backend = _PostgresBackend(
                str(state_path), _validate.text("name", name, max_chars=200)
            )
        else:
            self._backend = _FileBackend(Path(state_path))
        self.path = self._backend.path

    # ------------------------------------------------------------------ locking + IO
    def _locked(self) -> contextlib.AbstractContextManager[None]:
        return self._backend.locked()

    def _load(self) -> tuple[TripwireState, str | None]:
        """Current state (call under the lock); a corrupt state is moved aside."""
        raw = self._backend.read()
        if raw is None:
            return TripwireState(), None
        try:
            if len(raw) > MAX_STATE_BYTES:
                raise ValueError(f"state larger than {MAX_STATE_BYTES} bytes")
            return _parse_state(raw), None
        except (ValueError, UnicodeDecodeError, TypeError) as exc:
            moved = self._backend.move_aside(raw)
            log_event(
                log,
                logging.ERROR,
                "tripwire_state_corrupt",
                path=str(self.path or "postgresql"),
                moved_to=moved,
                error=str(exc)[:200],
            )
            if self._metrics is not None:
                self._metrics.corruptions.inc()
            state = TripwireState(
                downgraded=True, downgrade_reason="state_corrupted", last_corruption=moved
            )
            return state, moved

    def _save(self, state: TripwireState) -> None:
        self._backend.write(json.dumps(state.to_json(), sort_keys=True).encode())
        if self._metrics is not None:
            self._metrics.downgraded.set(1 if state.downgraded else 0)

    # ------------------------------------------------------------------ public API
    def state(self) -> TripwireState:
        """The persisted state (a corrupt file is handled as in :meth:`record`)."""
        with self._locked():
            state, moved = self._load()
            if moved is not None:
                self._save(replace(state, updated_at=_now()))
            return state

    def record(self, token_delta_pct: float) -> TripwireStatus:
        """Record one run's token delta (percent vs baseline) and persist the new state."""
        delta = _validate.finite_number(
            "token_delta_pct", token_delta_pct, minimum=-100, maximum=1e6
        )
        cfg = self.config
        with self._locked():
            state, moved = self._load()
            breached = delta > cfg.breach_threshold
            consecutive = state.consecutive_breaches + 1 if breached else 0
            downgraded, reason = state.downgraded, state.downgrade_reason
            clean = 0 if breached else state.clean_runs_since_downgrade + (1 if downgraded else 0)
            latched_now = recovered_now = False
            if not downgraded and consecutive >= cfg.consecutive_limit:
                downgraded, reason, latched_now, clean = True, "consecutive_breaches", True, 0
                log_event(log, logging.WARNING, "tripwire_latched", consecutive=consecutive)
            elif (
                downgraded
                and cfg.auto_recovery
                and reason != "state_corrupted"
                and clean >= cfg.recovery_clean_runs
            ):
                downgraded, reason, recovered_now, clean = False, None, True, 0
                log_event(log, logging.INFO, "tripwire_auto_recovered")
            new = replace(
                state,
                consecutive_breaches=consecutive,
                downgraded=downgraded,
                downgrade_reason=reason,
                clean_runs_since_downgrade=clean if downgraded else 0,
                total_runs=state.total_runs + 1,
                total_breaches=state.total_breaches + (1 if breached else 0),
                last_token_delta=delta,
                recent_deltas=(*state.recent_deltas, delta)[-HISTORY:],
                updated_at=_now(),
            )
            self._save(new)
        if self._metrics is not None:
            self._metrics.runs.labels(result="breach" if breached else "clean").inc()
        return TripwireStatus(new, breached, latched_now, recovered_now, moved)

    def reset(self, operator: str) -> TripwireState:
        """Manual reset by a named operator: lifts the downgrade and clears the streak."""
        who = _validate.text("operator", operator, max_chars=200)
        with self._locked():
            state, _ = self._load()
            new = replace(
                state,
                consecutive_breaches=0,
                downgraded=False,
                downgrade_reason=None,
                clean_runs_since_downgrade=0,
                last_corruption=None,
                updated_at=_now(),
            )
            self._save(new)
        log_event(log, logging.INFO, "tripwire_reset", operator=who)
        return new

    def parameters(self, full: Mapping[str, Any]) -> dict[str, Any]:
        """``full`` while healthy; ``full`` overridden by the reduced set while downgraded."""
        if not isinstance(full, Mapping):
            raise InvalidInputError(f"full must be a mapping, got {type(full).__name__}")
        if self.state().downgraded:
            return {**full, **self.config.downgrade_parameters}
        return dict(full)
