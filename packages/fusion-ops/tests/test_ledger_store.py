"""The energy ledger on SQLite and PostgreSQL: same rules as in memory, survives restarts and a
real SIGKILL mid-write, refuses bad stores at open, never overspends across processes."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fusion_ops.errors import (
    ApprovalRequiredError,
    BudgetExhaustedError,
    EmergencyBrakeError,
    ReservationError,
    ReviewRequiredError,
    StoreCorruptedError,
    StoreError,
    StoreSchemaError,
    StoreUnavailableError,
)
from fusion_ops.governance import EnergyGovernor
from fusion_ops.ledger_store import (
    SCHEMA_VERSION,
    SQLITE_SCHEMA_VERSION,
    Admission,
    AdmitResult,
    LedgerStore,
    MemoryLedgerStore,
    PostgresLedgerStore,
    Totals,
    _GroupCommit,
    _Job,
    open_ledger_store,
    redact_url,
)

StoreFactory = Callable[[], LedgerStore]
FORK = multiprocessing.get_context("fork")  # test modules are not importable by name (importlib)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens (and reopens) one store of each kind; all are closed afterwards."""
    opened: list[LedgerStore] = []
    memory = MemoryLedgerStore()
    target: str | Path | None = None
    if request.param == "sqlite":
        target = tmp_path / "ledger.db"
    elif request.param == "postgres":
        target = request.getfixturevalue("postgresql_url")

    def make() -> LedgerStore:
        store = memory if target is None else open_ledger_store(target)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def test_every_store_applies_the_admission_rules_in_order(new_store: StoreFactory) -> None:
    gov = EnergyGovernor(1000, store=new_store())
    with pytest.raises(ApprovalRequiredError):
        gov.request(gov.estimate(20_000), reviewed_by="a")
    first = gov.request(gov.estimate(800))
    with pytest.raises(ReviewRequiredError):
        gov.request(gov.estimate(100))
    with pytest.raises(EmergencyBrakeError):
        gov.request(gov.estimate(200), reviewed_by="a")
    with pytest.raises(BudgetExhaustedError):
        gov.request(gov.estimate(400, emergency=True))
    second = gov.request(gov.estimate(100), reviewed_by="a")
    assert gov.commit(first, 700) == 700
    gov.release(second)
    with pytest.raises(ReservationError, match="already settled"):
        gov.commit(first)
    snap = gov.snapshot()
    assert (snap.committed, snap.reserved, snap.open_reservations) == (700, 0, 0)
    assert snap.alerts_fired == ("auto_review",)
    assert snap.outcomes == {
        "approval_required": 1,
        "admitted": 2,
        "review_required": 1,
        "emergency_brake": 1,
        "budget_exhausted": 1,
    }


def test_a_reopened_store_resumes_the_ledger(new_store: StoreFactory) -> None:
    gov = EnergyGovernor(100_000, period="qa-2", store=new_store())
    token = gov.grant_approval(50_000, "cfo")
    for _ in range(3):
        gov.commit(gov.request(gov.estimate(5000)), 4000)
    held = gov.request(gov.estimate(1000))
    gov.close()
    again = EnergyGovernor(1, period="default", store=new_store())  # arguments only seed
    snap = again.snapshot()
    assert (snap.period, snap.budget, snap.committed, snap.reserved) == (
        "qa-2",
        100_000,
        12_000,
        1000,
    )
    assert snap.open_reservations == 1
    assert again.commit(held.id) == 1000  # a reservation survives, settled by id
    big = again.request(again.estimate(20_000), approval_token=token)
    assert big.approved_by == "cfo"
    with pytest.raises(ApprovalRequiredError):  # single use, also after a restart
        again.request(again.estimate(20_000), approval_token=token)


def test_a_new_period_archives_and_invalidates_tokens(new_store: StoreFactory) -> None:
    gov = EnergyGovernor(100_000, period="p1", store=new_store())
    token = gov.grant_approval(50_000, "cfo")
    gov.request(gov.estimate(10))
    gov.start_period("p2", 200_000)
    with pytest.raises(ApprovalRequiredError):
        gov.request(gov.estimate(20_000), approval_token=token)
    snap = gov.snapshot()
    assert (snap.period, snap.budget, snap.reserved, snap.open_reservations) == (
        "p2",
        200_000,
        0,
        0,
    )


def test_release_stale_frees_reservations_left_by_a_crash(new_store: StoreFactory) -> None:
    now = [1000.0]
    gov = EnergyGovernor(1000, store=new_store(), clock=lambda: now[0])
    old = gov.request(gov.estimate(100))
    now[0] += 600
    young = gov.request(gov.estimate(50))
    assert gov.release_stale(300) == 1
    with pytest.raises(ReservationError):
        gov.commit(old)
    assert gov.snapshot().reserved == 50
    gov.commit(young)


# ---------------------------------------------------------------------- crash safety (SQLite)
_WRITER = textwrap.dedent(
    """
    import sys
    from fusion_ops.governance import EnergyGovernor
    from fusion_ops.ledger_store import open_ledger_store
    gov = EnergyGovernor(10**9, period="qa-2", store=open_ledger_store(sys.argv[1]))
    if len(sys.argv) > 2:
        print("token", gov.grant_approval(10**6, "cfo"), flush=True)
    print("ready", flush=True)
    while True:
        kept = gov.request(gov.estimate(3))
        gov.commit(gov.request(gov.estimate(2)), 1)
        gov.release(gov.request(gov.estimate(5)))
        print("committed", gov.snapshot().committed, kept.id, flush=True)
    """
)


def test_sqlite_ledger_survives_sigkill_mid_write(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    token = None
    acknowledged = 0.0
    for attempt in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), *(["grant"] if attempt == 0 else [])],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        if line[0] == "token":
            token = line[1]
            line = proc.stdout.readline().split()
        assert line == ["ready"]
        # the first acknowledged loop, then a kill at a varying point of the following ones
        # (waiting on output, not on time: a loaded machine may take long for one loop)
        first = proc.stdout.readline()
        time.sleep(0.05 * attempt)
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        acks = [row.split() for row in (first + out).splitlines() if row.startswith("committed")]
        assert acks, "the writer committed nothing before the kill"
        acknowledged = float(acks[-1][1])
        gov = EnergyGovernor(1, period="default", store=open_ledger_store(path))
        snap = gov.snapshot()
        assert snap.period == "qa-2"
        assert snap.committed >= acknowledged  # nothing acknowledged is lost
        with sqlite3.connect(path) as raw:
            (held,) = raw.execute(
                "SELECT COALESCE(SUM(cost), 0) FROM fusion_reservations"
            ).fetchone()
            assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert snap.reserved == pytest.approx(held)  # the totals match the reservations
        assert snap.open_reservations >= len(acks)  # each loop keeps one reservation open
        gov.commit(acks[-1][2])  # an acknowledged reservation from the dead process
        gov.close()
    gov = EnergyGovernor(1, store=open_ledger_store(path))
    assert token is not None
    assert gov.request(gov.estimate(20_000), approval_token=token).approved_by == "cfo"
    gov.close()


def _open_together(directory: str, files: int, start: Any) -> None:
    for i in range(files):
        start.wait(timeout=30)  # a worker that died breaks the barrier for the others
        open_ledger_store(Path(directory) / f"new-{i}.db").close()


def test_processes_creating_one_new_file_together_all_open_it(tmp_path: Path) -> None:
    """Converting a new file to WAL races: SQLite tells the loser "locked" without waiting."""
    files, workers = 25, 4
    start = FORK.Barrier(workers)
    procs = [
        FORK.Process(target=_open_together, args=(str(tmp_path), files, start))
        for _ in range(workers)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        p.kill()
    assert [p.exitcode for p in procs] == [0] * workers


def test_a_new_file_opens_once_its_creator_commits(tmp_path: Path) -> None:
    """The race's loser, made deterministic: another connection holds the new file's write lock
    while the store converts it to WAL, and SQLite answers "locked" at once; the store waits."""
    path = tmp_path / "new.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the winner, between taking the lock and committing
    outcome: list[object] = []

    def open_it() -> None:
        try:
            open_ledger_store(path).close()
            outcome.append("opened")
        except StoreError as exc:
            outcome.append(exc)

    opener = threading.Thread(target=open_it)
    opener.start()
    opener.join(0.5)  # time to meet the lock; a slow start can only hide a regression
    holder.execute("COMMIT")
    holder.close()
    opener.join(60)
    assert outcome == ["opened"]


# ---------------------------------------------------------------------- bad stores
def test_a_corrupted_sqlite_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    path.write_bytes(b"this is not a database\x00" * 200)
    before = path.read_bytes()
    with pytest.raises(StoreCorruptedError, match=r"ledger\.db"):
        open_ledger_store(path)
    assert path.read_bytes() == before


def test_a_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    open_ledger_store(path).close()
    with sqlite3.connect(path) as raw:
        # the group commit is PostgreSQL's: SQLite files stay at version 1 (older code opens them)
        assert raw.execute("PRAGMA user_version").fetchone() == (1,)
        raw.execute(f"PRAGMA user_version = {SQLITE_SCHEMA_VERSION + 1}")
    with pytest.raises(StoreSchemaError, match=f"version {SQLITE_SCHEMA_VERSION + 1}"):
        open_ledger_store(path)


@pytest.mark.postgres
@pytest.mark.parametrize(
    "tamper",
    ["UPDATE fusion_ledger SET budget = 'NaN'", "UPDATE fusion_ledger SET reserved = 'Infinity'"],
)
def test_postgres_refuses_non_finite_amounts(postgresql_url: str, tamper: str) -> None:
    """In PostgreSQL NaN compares greater than every number, so a NaN budget would admit
    anything: the CHECK constraints refuse it."""
    import psycopg

    open_ledger_store(postgresql_url).open("p", 100, 0.0)
    with (
        psycopg.connect(postgresql_url, autocommit=True) as conn,
        pytest.raises(psycopg.errors.CheckViolation),
    ):
        conn.execute(tamper)


def test_a_foreign_ledger_table_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE fusion_ledger (x)")
    with pytest.raises(StoreSchemaError, match="no schema version"):
        open_ledger_store(path)


def test_bad_targets_are_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailableError, match="directory"):
        open_ledger_store(tmp_path)
    with pytest.raises(StoreUnavailableError, match="file path or a postgresql"):
        open_ledger_store(42)  # type: ignore[arg-type]


def test_redact_url_hides_the_password() -> None:
    assert redact_url("postgresql://u:s3cret@h:5/db") == "postgresql://u@h:5/db"
    assert redact_url("postgresql://h/db") == "postgresql://h/db"


def test_an_unreachable_server_is_a_typed_error_without_the_password() -> None:
    pytest.importorskip("psycopg")
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(StoreUnavailableError, match="cannot connect") as caught:
        open_ledger_store(f"postgresql://u:hunter2secret@127.0.0.1:{port}/db")
    assert "hunter2secret" not in str(caught.value)
    assert f"127.0.0.1:{port}" in str(caught.value)


@pytest.mark.postgres
def test_wrong_credentials_are_a_typed_error_without_the_password(
    postgresql_server: Any, postgresql_url: str
) -> None:
    wrong = postgresql_server.url(postgresql_url.rsplit("/", 1)[1], password="not-the-password")
    with pytest.raises(StoreUnavailableError, match="password authentication failed") as caught:
        open_ledger_store(wrong)
    assert "not-the-password" not in str(caught.value)


@pytest.mark.postgres
def test_a_newer_postgres_schema_is_refused(postgresql_url: str) -> None:
    import psycopg

    open_ledger_store(postgresql_url).close()
    with psycopg.connect(postgresql_url, autocommit=True) as conn:
        conn.execute("UPDATE schema_version SET version = 99 WHERE component = 'fusion_ops.ledger'")
    with pytest.raises(StoreSchemaError, match="version 99"):
        open_ledger_store(postgresql_url)


# ---------------------------------------------------------------------- several processes
_ADMITTER = textwrap.dedent(
    """
    import json, sys, threading
    from fusion_ops.errors import BudgetDeniedError
    from fusion_ops.governance import EnergyGovernor
    from fusion_ops.ledger_store import open_ledger_store
    target, threads, each, mixed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    govs = [EnergyGovernor(90, store=open_ledger_store(target)) for _ in range(threads)]
    results = []
    lock = threading.Lock()

    def work(gov):
        for i in range(each):
            try:
                held = gov.request(gov.estimate(5, emergency=True), reviewed_by="qa")
            except BudgetDeniedError as denied:
                with lock:
                    results.append(["denied", denied.reason])
                continue
            if mixed == "mixed" and i % 2:
                gov.release(held)
                with lock:
                    results.append(["released", held.id, held.cost])
            else:
                actual = gov.commit(held, held.cost - (mixed == "mixed"))
                with lock:
                    results.append(["committed", held.id, actual])

    print("ready", flush=True)
    sys.stdin.readline()
    workers = [threading.Thread(target=work, args=(g,)) for g in govs]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print(json.dumps(results), flush=True)
    """
)


def _run_admitters(
    target: str, processes: int, threads: int, each: int, mode: str
) -> list[list[object]]:
    """``processes`` × ``threads`` governors (one connection each) request cost 3 against a
    budget of 90 at once; ``mode`` "commit" commits every admission at its cost, "mixed"
    releases every other one and commits the rest below their reservation."""
    EnergyGovernor(90, store=open_ledger_store(target)).close()  # create the ledger once
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _ADMITTER, target, str(threads), str(each), mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    outputs = [proc.communicate("go\n", timeout=300)[0] for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    return [row for out in outputs for row in json.loads(out)]


def _check_no_overspend(target: str, rows: list[list[object]], requests: int) -> None:
    assert len(rows) == requests
    settled = [row for row in rows if row[0] != "denied"]
    assert len({row[1] for row in settled}) == len(settled)  # every id admitted once
    assert {row[1] for row in rows if row[0] == "denied"} <= {"budget_exhausted"}
    gov = EnergyGovernor(1, store=open_ledger_store(target))
    snap = gov.snapshot()
    gov.close()
    committed = sum(row[2] for row in settled if row[0] == "committed")
    assert snap.committed == pytest.approx(committed)
    assert snap.committed <= 90
    assert (snap.reserved, snap.open_reservations) == (0, 0)  # each committed or released
    assert snap.outcomes["admitted"] == len(settled)
    assert snap.outcomes.get("budget_exhausted", 0) == requests - len(settled)


def test_two_sqlite_processes_never_overspend(tmp_path: Path) -> None:
    target = str(tmp_path / "ledger.db")
    _check_no_overspend(target, _run_admitters(target, 2, 2, 30, "mixed"), 120)


@pytest.mark.postgres
def test_200_admissions_from_2_processes_on_postgres_never_overspend(postgresql_url: str) -> None:
    rows = _run_admitters(postgresql_url, 2, 4, 25, "commit")
    _check_no_overspend(postgresql_url, rows, 200)
    admitted = [row for row in rows if row[0] == "committed"]
    assert sum(row[2] for row in admitted) == 90  # type: ignore[misc]  # 30 x 3: the budget
    assert len(admitted) == 30


_PG_WRITER = textwrap.dedent(
    """
    import sys, threading
    from fusion_ops.errors import StoreError
    from fusion_ops.governance import EnergyGovernor
    from fusion_ops.ledger_store import open_ledger_store
    gov = EnergyGovernor(1e12, store=open_ledger_store(sys.argv[1]))
    lock = threading.Lock()

    def work():
        while True:
            try:
                held = gov.request(gov.estimate(1), reviewed_by="qa")
            except StoreError:
                return
            with lock:
                print("ack", held.id, flush=True)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    """
)


@pytest.mark.postgres
def test_no_acknowledged_admission_is_lost_when_postgres_crashes(postgresql_cluster: Any) -> None:
    """The server stops as in a power cut (no checkpoint) while 4 threads admit; after WAL
    recovery every reservation the writer was told about is there, and the totals match."""
    EnergyGovernor(1e12, store=open_ledger_store(postgresql_cluster.url())).close()
    proc = subprocess.Popen(
        [sys.executable, "-c", _PG_WRITER, postgresql_cluster.url()],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    acknowledged = [proc.stdout.readline().split()[1] for _ in range(300)]
    postgresql_cluster.crash()
    out, _ = proc.communicate(timeout=120)
    acknowledged += [line.split()[1] for line in out.splitlines() if line.startswith("ack")]
    postgresql_cluster.start()
    import psycopg

    with psycopg.connect(postgresql_cluster.url()) as conn:
        stored = {rid for (rid,) in conn.execute("SELECT id FROM fusion_reservations")}
        (reserved,) = conn.execute("SELECT reserved FROM fusion_ledger").fetchone()  # type: ignore[misc]
    assert set(acknowledged) <= stored
    assert reserved == len(stored)  # each reservation costs 1


# ------------------------------------------------------------------ group commit (PostgreSQL)
def _admission(cost: float, reviewer: str | None = "qa") -> Admission:
    return Admission(cost, False, reviewer, None, 1.0, (), 0.0)


def _exhausted(totals: Totals) -> tuple[str, str]:
    return ("budget_exhausted", f"{totals.committed + totals.reserved:g} used")


@pytest.mark.postgres
def test_a_batch_checks_each_admission_in_order_and_answers_each(postgresql_url: str) -> None:
    """Costs 6, 6, 3, 1 against a budget of 10: the second does not fit after the first, the
    third and fourth do; each caller gets its own answer, the denial counted once."""
    store = PostgresLedgerStore(postgresql_url)
    store.open("p", 10, 0.0)
    reviewers = ("qa", None, None, "ops")
    jobs = [
        _Job(_admission(c, r), _exhausted) for c, r in zip((6, 6, 3, 1), reviewers, strict=True)
    ]
    results = store._admit_batch(jobs)
    store._pool.flush()
    assert [r.denied is None for r in results] == [True, False, True, True]
    assert [r.totals.reserved for r in results if r.denied is None] == [6, 9, 10]
    assert results[1].denied == ("budget_exhausted", "10 used")
    ids = [r.reservation_id for r in results if r.reservation_id is not None]
    assert ids == ["p:1", "p:2", "p:3"]
    state = store.state()
    assert (state.reserved, state.open_reservations) == (10, 3)
    assert state.outcomes == {"admitted": 3, "budget_exhausted": 1}
    import psycopg

    with psycopg.connect(postgresql_url) as conn:
        stored = conn.execute("SELECT reviewed_by FROM fusion_reservations ORDER BY id").fetchall()
    assert stored == [("qa",), (None,), ("ops",)]
    store.settle("p:2", None, (), 1.0)  # a batch's reservation settles like any other
    assert store.state().committed == 3
    store.close()


@pytest.mark.postgres
def test_concurrent_threads_on_one_store_never_overspend(postgresql_url: str) -> None:
    """16 threads of one process share one store (so its group commit) and request cost 3 (an
    emergency estimate of 5) against a budget of 90: exactly 30 admitted, every id once, the
    rest refused."""
    gov = EnergyGovernor(90, store=PostgresLedgerStore(postgresql_url))
    held: list[str] = []
    denied: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(5):
            try:
                reservation = gov.request(gov.estimate(5, emergency=True), reviewed_by="qa")
            except BudgetExhaustedError:
                with lock:
                    denied.append("exhausted")
                continue
            with lock:
                held.append(reservation.id)

    threads = [threading.Thread(target=work) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    snap = gov.snapshot()
    gov.close()
    assert (len(held), len(set(held)), len(denied)) == (30, 30, 50)
    assert (snap.reserved, snap.open_reservations) == (90, 30)
    assert snap.outcomes == {"admitted": 30, "budget_exhausted": 50}


def _group_with(commit: Callable[[list[_Job]], list[AdmitResult]]) -> _GroupCommit:
    return _GroupCommit(commit, lambda: None)


def test_callers_arriving_during_a_commit_form_the_next_batch() -> None:
    """While the first batch commits, three callers queue; they go as one batch, each with its
    own answer."""
    batches: list[list[float]] = []
    release = threading.Event()

    def commit(batch: list[_Job]) -> list[AdmitResult]:
        batches.append([job.admission.cost for job in batch])
        if len(batches) == 1:
            release.wait(timeout=30)
        return [AdmitResult(Totals("p", 1, 0, job.admission.cost)) for job in batch]

    group = _group_with(commit)
    answers: dict[float, float] = {}

    def submit(cost: float) -> None:
        answers[cost] = group.submit(_admission(cost), _exhausted).totals.reserved

    first = threading.Thread(target=submit, args=(1.0,))
    first.start()
    while not batches:
        time.sleep(0.001)
    others = [threading.Thread(target=submit, args=(cost,)) for cost in (2.0, 3.0, 4.0)]
    for thread in others:
        thread.start()
    while len(group._waiting) < 3:
        time.sleep(0.001)
    release.set()
    for thread in [first, *others]:
        thread.join()
    assert batches[0] == [1.0]
    assert sorted(batches[1]) == [2.0, 3.0, 4.0]
    assert answers == {1.0: 1.0, 2.0: 2.0, 3.0: 3.0, 4.0: 4.0}


def test_a_failed_batch_fails_each_of_its_callers_and_the_next_batch_runs() -> None:
    calls = 0

    def commit(batch: list[_Job]) -> list[AdmitResult]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise StoreUnavailableError("the server went away")
        return [AdmitResult(Totals("p", 1, 0, 0)) for _ in batch]

    group = _group_with(commit)
    with pytest.raises(StoreUnavailableError, match="went away"):
        group.submit(_admission(1), _exhausted)
    assert group.submit(_admission(1), _exhausted).denied is None


def test_a_failed_flush_acknowledges_nothing() -> None:
    """Committed but not durable: the caller hears the error, not "admitted"."""

    def flush() -> None:
        raise StoreUnavailableError("flush failed")

    group = _GroupCommit(lambda batch: [AdmitResult(Totals("p", 1, 0, 1)) for _ in batch], flush)
    with pytest.raises(StoreUnavailableError, match="flush failed"):
        group.submit(_admission(1), _exhausted)


def test_a_lone_caller_is_admitted_alone_and_a_crowd_as_a_batch() -> None:
    """A batch of one takes the single-admission path (its own durable commit, no shared
    flush); two or more callers still go as a batch and share one flush."""
    batches: list[int] = []
    alone: list[float] = []
    flushes = 0
    release = threading.Event()

    def commit(batch: list[_Job]) -> list[AdmitResult]:
        batches.append(len(batch))
        return [AdmitResult(Totals("p", 1, 0, job.admission.cost)) for job in batch]

    def single(job: _Job) -> AdmitResult:
        alone.append(job.admission.cost)
        if len(alone) == 1:
            release.wait(timeout=30)
        return AdmitResult(Totals("p", 1, 0, job.admission.cost))

    def flush() -> None:
        nonlocal flushes
        flushes += 1

    group = _GroupCommit(commit, flush, single)
    first = threading.Thread(target=group.submit, args=(_admission(1.0), _exhausted))
    first.start()
    while not alone:
        time.sleep(0.001)
    crowd = [
        threading.Thread(target=group.submit, args=(_admission(cost), _exhausted))
        for cost in (2.0, 3.0)
    ]
    for thread in crowd:
        thread.start()
    while len(group._waiting) < 2:
        time.sleep(0.001)
    release.set()
    for thread in [first, *crowd]:
        thread.join()
    assert alone == [1.0]
    assert batches == [2]
    assert flushes == 1


@pytest.mark.postgres
def test_a_version_1_postgres_ledger_is_migrated(postgresql_url: str) -> None:
    import psycopg

    PostgresLedgerStore(postgresql_url).close()
    with psycopg.connect(postgresql_url, autocommit=True) as conn:
        conn.execute("DROP FUNCTION fusion_ledger_admit_batch")
        conn.execute("UPDATE schema_version SET version = 1 WHERE component = 'fusion_ops.ledger'")
    gov = EnergyGovernor(10, store=PostgresLedgerStore(postgresql_url))
    assert gov.request(gov.estimate(4), reviewed_by="qa").cost == 4
    gov.close()
    with psycopg.connect(postgresql_url) as conn:
        row = conn.execute(
            "SELECT version FROM schema_version WHERE component = 'fusion_ops.ledger'"
        ).fetchone()
    assert row == (SCHEMA_VERSION,)


@pytest.mark.postgres
def test_a_killed_backend_fails_one_call_and_the_next_reconnects(postgresql_url: str) -> None:
    """pg_terminate_backend of every connection the store holds (three in its pool): the next
    admission fails with the typed error (nothing admitted), the one after it reconnects."""
    import psycopg

    store = PostgresLedgerStore(postgresql_url)
    gov = EnergyGovernor(100, store=store)
    gov.request(gov.estimate(1), reviewed_by="qa")
    with store._pool.tx(), store._pool.tx(), store._pool.tx():
        pass  # three connections, idle in the pool afterwards
    with psycopg.connect(postgresql_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    with pytest.raises(StoreUnavailableError):
        gov.request(gov.estimate(1), reviewed_by="qa")
    gov.request(gov.estimate(1), reviewed_by="qa")
    assert gov.snapshot().reserved == 2
    gov.close()
