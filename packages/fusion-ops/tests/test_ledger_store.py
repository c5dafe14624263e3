"""The energy ledger on SQLite and PostgreSQL: same rules as in memory, survives restarts and a
real SIGKILL mid-write, refuses bad stores at open, never overspends across processes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
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
    StoreSchemaError,
    StoreUnavailableError,
)
from fusion_ops.governance import EnergyGovernor
from fusion_ops.ledger_store import (
    SCHEMA_VERSION,
    LedgerStore,
    MemoryLedgerStore,
    open_ledger_store,
    redact_url,
)

StoreFactory = Callable[[], LedgerStore]


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
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreSchemaError, match=f"version {SCHEMA_VERSION + 1}"):
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
