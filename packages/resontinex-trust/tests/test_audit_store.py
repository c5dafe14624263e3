"""The break-glass audit chain on SQLite and PostgreSQL: live overrides shared between processes,
one chain from concurrent appenders, SIGKILL mid-write, tampering, refusals at open."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import signal
import socket
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from resontinex.trust import (
    AuditTamperError,
    CompositeTrustGate,
    Decision,
    InputVector,
    PostgresAuditStore,
    SQLiteAuditStore,
    TrustStoreCorruptError,
    TrustStoreSchemaError,
    TrustStoreUnavailableError,
    UnauthorizedOverrideError,
    active_overrides,
    break_glass_override,
    open_audit_chain,
    validate_and_normalize_config,
)
from resontinex.trust.audit import AuditLog
from resontinex.trust.cli import main

FORK = multiprocessing.get_context("fork")  # test modules are not importable by name (importlib)


def _gate() -> CompositeTrustGate:
    config = validate_and_normalize_config({"break_glass": {"authorized_operators": ["ops_lead"]}})
    gate = CompositeTrustGate(InputVector(0.1, 0.9, 0.5), config)
    assert gate.decision is Decision.ABORT
    return gate


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the chain lives: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "state" / "break-glass.sqlite")
    url: str = request.getfixturevalue("pg_url")
    return url


def _sql(target: str, statement: str, params: tuple[Any, ...] = ()) -> None:
    """Write into the chain behind the store's back, as an attacker with database access would."""
    if target.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(target, autocommit=True) as db:
            db.execute(statement.replace("?", "%s"), params)
    else:
        with sqlite3.connect(target) as db:
            db.execute(statement, params)
        db.close()


def test_a_grant_is_live_for_every_process_until_it_expires(target: str) -> None:
    record = break_glass_override(
        _gate(), "incident 7", "ops_lead", ttl_seconds=600, audit_log=target
    )
    with pytest.raises(UnauthorizedOverrideError):
        break_glass_override(_gate(), "let me in", "mallory", audit_log=target)
    # a fresh connection (as another process would open) sees the grant, not the refusal
    (live,) = active_overrides(target)
    assert live == record
    assert live.effective_decision() is Decision.EXECUTE
    assert active_overrides(target, now=record.expires_at) == []
    chain = open_audit_chain(target, read_only=True)
    try:
        assert [r["event"] for r in chain.records()] == [
            "break_glass_granted",
            "break_glass_refused",
        ]
        result = chain.verify()
    finally:
        chain.close()
    assert (result.ok, result.records) == (True, 2)


def test_verify_audit_cli_reads_the_database_read_only(
    target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for i in range(3):
        break_glass_override(_gate(), f"incident {i}", "ops_lead", audit_log=target)
    assert main(["verify-audit", target, "--output-format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["ok"], out["records"]) == (True, 3)
    # the reader opened nothing for writing: a writer still appends after it
    break_glass_override(_gate(), "incident 3", "ops_lead", audit_log=target)
    assert main(["verify-audit", target]) == 0


@pytest.mark.parametrize(
    ("attack", "problem"),
    [
        ("UPDATE trust_audit SET body = replace(body, 'incident 1', 'nothing') WHERE seq = 1",
         "does not match its hash"),
        ("DELETE FROM trust_audit WHERE seq = 2", "head row expects 3 records"),
        ("DELETE FROM trust_audit WHERE seq = 1", "sequence gap"),
        ("UPDATE trust_audit SET active_until = active_until + 1e6 WHERE seq = 0",
         "active_until column disagrees"),
    ],
)  # fmt: skip
def test_tampering_in_the_database_is_found(
    target: str, attack: str, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for i in range(3):
        break_glass_override(_gate(), f"incident {i}", "ops_lead", audit_log=target)
    _sql(target, attack)
    chain = open_audit_chain(target, read_only=True)
    try:
        result = chain.verify()
        assert not result.ok
        assert problem in str(result.problem)
        if "active_until" in attack:  # an extended expiry grants nothing: refused on read
            with pytest.raises(AuditTamperError, match="record 0 was edited"):
                chain.active(time.time())
    finally:
        chain.close()
    assert main(["verify-audit", target]) == 1
    assert "TAMPERED" in capsys.readouterr().out


def test_a_forged_grant_inserted_past_the_head_grants_nothing(target: str) -> None:
    from resontinex.trust.audit import new_record

    first = break_glass_override(_gate(), "real", "ops_lead", audit_log=target)
    forged = new_record(
        1,
        "break_glass_granted",
        {k: v for k, v in _records(target)[0].items() if k not in ("seq", "prev_hash", "hash",
                                                                   "event", "active_until")},
        first.audit_hash,
        active_until=time.time() + 3000,
    )  # fmt: skip
    _sql(
        target,
        "INSERT INTO trust_audit (seq, event, body, hash, active_until) VALUES (?, ?, ?, ?, ?)",
        (1, forged["event"], json.dumps(forged), forged["hash"], forged["active_until"]),
    )
    with pytest.raises(AuditTamperError, match="record 1 was edited or inserted"):
        active_overrides(target)
    assert main(["verify-audit", target]) == 1


def _records(target: str) -> list[dict[str, Any]]:
    chain = open_audit_chain(target, read_only=True)
    try:
        return chain.records()
    finally:
        chain.close()


def _append_many(target: str, worker: int, count: int) -> None:
    gate = _gate()
    for i in range(count):
        break_glass_override(gate, f"w{worker} #{i}", "ops_lead", audit_log=target)


def test_concurrent_processes_append_one_chain_without_forks(target: str) -> None:
    per_worker = 40
    procs = [FORK.Process(target=_append_many, args=(target, w, per_worker)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    chain = open_audit_chain(target, read_only=True)
    try:
        result = chain.verify()
        records = chain.records()
    finally:
        chain.close()
    assert (result.ok, result.records) == (True, 2 * per_worker)
    assert [r["seq"] for r in records] == list(range(2 * per_worker))
    reasons = {r["override_reason"] for r in records}
    assert reasons == {f"w{w} #{i}" for w in range(2) for i in range(per_worker)}
    assert len(active_overrides(target)) == 2 * per_worker


def _grant_forever(target: str, acks: str) -> None:
    """Grant until killed; after each grant returns, its id goes to ``acks`` (one write)."""
    gate = _gate()
    fd = os.open(acks, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    chain = open_audit_chain(target)
    while True:
        rec = break_glass_override(gate, "incident", "ops_lead", ttl_seconds=3600, audit_log=chain)
        os.write(fd, rec.override_id.encode() + b"\n")


def _wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _open_together(directory: str, files: int, start: Any) -> None:
    for i in range(files):
        start.wait(timeout=30)  # a worker that died breaks the barrier for the others
        open_audit_chain(Path(directory) / f"new-{i}.sqlite").close()


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


def test_sigkill_mid_write_loses_no_acknowledged_override(target: str, tmp_path: Path) -> None:
    """SQLite: the file survives; PostgreSQL: the killed client's transaction is rolled back and
    its row lock released, so the next process appends after it."""
    acks = tmp_path / "acks"

    def acked() -> int:
        return len(acks.read_bytes().splitlines()) if acks.exists() else 0

    for _round in range(4):
        before = acked()
        proc = FORK.Process(target=_grant_forever, args=(target, str(acks)))
        proc.start()
        _wait_for(lambda before=before: acked() >= before + 5)
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
    acknowledged = {line.decode() for line in acks.read_bytes().splitlines()}
    if not target.startswith("postgresql://"):
        with sqlite3.connect(target) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        db.close()
    live = {o.override_id for o in active_overrides(target)}
    assert acknowledged <= live  # a grant that returned survived the kill
    assert len(live) <= len(acknowledged) + 4  # at most one unacknowledged commit per kill
    assert main(["verify-audit", target]) == 0


def test_jsonl_chain_keeps_working_and_holds_live_overrides(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    record = break_glass_override(_gate(), "incident", "ops_lead", audit_log=str(path))
    assert active_overrides(AuditLog(path)) == [record]
    assert AuditLog(path).verify().ok
    lines = path.read_text().splitlines()
    edited = json.loads(lines[0])
    edited["active_until"] += 1e6
    path.write_text(json.dumps(edited) + "\n")
    with pytest.raises(AuditTamperError, match="edited"):
        active_overrides(path)


# ------------------------------------------------------------------- refusals at open


def test_corrupt_sqlite_file_is_refused_and_left_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "break-glass.sqlite"
    garbage = b"this is not a database" * 100
    path.write_bytes(garbage)
    with pytest.raises(TrustStoreCorruptError, match="not a readable SQLite database"):
        SQLiteAuditStore(path)
    with pytest.raises(TrustStoreCorruptError):
        break_glass_override(_gate(), "incident", "ops_lead", audit_log=str(path))
    assert main(["verify-audit", str(path)]) == 2
    assert "not a readable" in capsys.readouterr().err
    assert path.read_bytes() == garbage


def test_sqlite_of_a_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "break-glass.db"
    SQLiteAuditStore(path).close()
    _sql(str(path), "UPDATE schema_version SET version = 99")
    for read_only in (False, True):
        with pytest.raises(TrustStoreSchemaError, match=r"schema version 99.*upgrade"):
            SQLiteAuditStore(path, read_only=read_only)
    assert main(["verify-audit", str(path)]) == 2


def test_foreign_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE entries (idx INTEGER PRIMARY KEY)")
    db.close()
    with pytest.raises(TrustStoreSchemaError, match=r"tables \['entries'\]"):
        SQLiteAuditStore(path)
    with pytest.raises(TrustStoreSchemaError, match="holds no"):
        SQLiteAuditStore(path, read_only=True)
    with sqlite3.connect(path) as db:  # nothing was added to the other program's file
        tables = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    db.close()
    assert tables == [("entries",)]


def test_missing_sqlite_file_fails_verification_unless_allowed(tmp_path: Path) -> None:
    path = tmp_path / "never-written.sqlite"
    assert main(["verify-audit", str(path)]) == 2
    assert main(["verify-audit", str(path), "--allow-missing"]) == 0
    assert not path.exists()  # the verifier created nothing


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_database_is_refused_without_the_password() -> None:
    pytest.importorskip("psycopg")
    url = f"postgresql://app:hunter2secret@127.0.0.1:{_closed_port()}/resontinex"
    with pytest.raises(TrustStoreUnavailableError) as caught:
        PostgresAuditStore(url)
    message = str(caught.value)
    assert f"postgresql://app@127.0.0.1:{url.rsplit(':', 1)[1].split('/')[0]}" in message
    assert "hunter2secret" not in message
    assert main(["verify-audit", url]) == 2


def test_malformed_url_is_refused_without_echoing_it() -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(TrustStoreUnavailableError) as caught:
        PostgresAuditStore("postgresql://app:hunter2secret@127.0.0.1:notaport/db")
    assert "hunter2secret" not in str(caught.value)


@pytest.mark.postgres
def test_wrong_credentials_are_refused_without_the_password(pg_url: str) -> None:
    wrong = pg_url.replace("@", "x-wrong@", 1)  # the right password, plus a suffix
    password = wrong.split("//", 1)[1].split("@", 1)[0].split(":", 1)[1]
    with pytest.raises(TrustStoreUnavailableError, match="password authentication failed") as e:
        PostgresAuditStore(wrong)
    assert password not in str(e.value)


@pytest.mark.postgres
def test_postgres_newer_version_foreign_tables_and_empty_reader_are_refused(
    pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(TrustStoreSchemaError, match="holds no"):
        PostgresAuditStore(pg_url, read_only=True)
    assert main(["verify-audit", pg_url]) == 2
    assert "holds no" in capsys.readouterr().err
    _sql(pg_url, "CREATE TABLE trust_audit (x INTEGER)")
    with pytest.raises(TrustStoreSchemaError, match=r"tables \['trust_audit'\]"):
        PostgresAuditStore(pg_url)
    _sql(pg_url, "DROP TABLE trust_audit")
    PostgresAuditStore(pg_url).close()
    # another store's tables in the same database are fine; a newer version of ours is not
    _sql(pg_url, "UPDATE schema_version SET version = 7 WHERE component = ?",
         ("resontinex.trust.audit",))  # fmt: skip
    for read_only in (False, True):
        with pytest.raises(TrustStoreSchemaError, match="schema version 7"):
            PostgresAuditStore(pg_url, read_only=read_only)


@pytest.mark.postgres
def test_a_lost_connection_fails_the_call_and_the_next_call_reconnects(
    pg_url: str,
) -> None:
    import psycopg

    with PostgresAuditStore(pg_url) as chain:
        break_glass_override(_gate(), "before", "ops_lead", audit_log=chain)
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        with pytest.raises(TrustStoreUnavailableError, match="failed"):
            break_glass_override(_gate(), "lost", "ops_lead", audit_log=chain)
        break_glass_override(_gate(), "after", "ops_lead", audit_log=chain)
        assert [o.override_reason for o in active_overrides(chain)] == ["before", "after"]
        assert chain.verify().ok


@pytest.mark.postgres
def test_an_append_that_dies_in_commit_is_read_back_and_reported_not_stored(pg_url: str) -> None:
    """The server ends the session while committing the second grant (a deferred trigger that
    terminates its own backend): the caller hears the grant was not stored, not a bare
    failure, and the next grant takes its place in the chain."""
    import psycopg

    with PostgresAuditStore(pg_url) as chain:
        break_glass_override(_gate(), "before", "ops_lead", audit_log=chain)
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(
                "CREATE FUNCTION die_in_commit() RETURNS trigger LANGUAGE plpgsql AS $$ "
                "BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NULL; END $$"
            )
            admin.execute(
                "CREATE CONSTRAINT TRIGGER die_in_commit AFTER INSERT ON trust_audit "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION die_in_commit()"
            )
        with pytest.raises(TrustStoreUnavailableError, match="record 1 was not stored"):
            break_glass_override(_gate(), "lost", "ops_lead", audit_log=chain)
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("DROP TRIGGER die_in_commit ON trust_audit")
        break_glass_override(_gate(), "after", "ops_lead", audit_log=chain)
        assert [o.override_reason for o in active_overrides(chain)] == ["before", "after"]
        assert chain.verify().ok


@pytest.mark.postgres
def test_a_committed_append_whose_answer_was_lost_is_acknowledged_once(pg_url: str) -> None:
    """The read-back itself: a record that is in the chain is returned as appended (not
    appended again); one that differs from what is stored at its place is reported missing."""
    with PostgresAuditStore(pg_url) as chain:
        stored = chain.append("test", {"n": 1})
        assert chain._resolve(stored, "answer lost") == stored
        other = {**stored, "hash": "0" * 64}
        with pytest.raises(TrustStoreUnavailableError, match="record 0 was not stored"):
            chain._resolve(other, "answer lost")
        assert len(chain.records()) == 1


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda p: open_audit_chain(123), "AuditLogError", "audit_log: expected a path"),
        (lambda p: SQLiteAuditStore(p).append("e", {}, active_until="soon"), "AuditLogError",
         "active_until"),
        (lambda p: SQLiteAuditStore(p).append("e", {"x": math.nan}), "AuditLogError",
         "not storable as JSON"),
        (lambda p: SQLiteAuditStore(p).append("e", {"active_until": 1.0}), "AuditLogError",
         "reserved"),
        (lambda p: active_overrides(p, now=math.nan), "BreakGlassError", "finite POSIX time"),
        (lambda p: SQLiteAuditStore(p, read_only=True), "AuditLogError", "does not exist"),
    ],
)  # fmt: skip
def test_bad_input_is_a_typed_error_and_writes_nothing(
    tmp_path: Path, call: Callable[[str], object], error: str, match: str
) -> None:
    import resontinex.trust as trust

    path = str(tmp_path / "chain.sqlite")
    with pytest.raises(getattr(trust, error), match=match):
        call(path)
    if Path(path).exists():
        assert SQLiteAuditStore(path, read_only=True).records() == []
