"""One sequencer whoever appends: real processes appending to one log on each backend, a
SIGKILLed appender, and the PostgreSQL store's open-time refusals (unreachable, wrong
credentials, newer schema, foreign tables) with the password never in a message."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

from hbt_core.auditlog import AuditLog
from hbt_core.auditstore import PG_SCHEMA_VERSION
from hbt_core.cli import main
from hbt_core.errors import (
    AuditLogFormatError,
    AuditStoreUnavailableError,
    IntegrityError,
    InvalidInputError,
)
from hbt_core.keys import load_private_key, load_public_key

# fork: the workers below live in this test module, which --import-mode=importlib does not
# make importable by name, as spawn would need.
FORK = multiprocessing.get_context("fork")


def _appender(target: str | Path, key_path: Path, writer: int, count: int, out: Connection) -> None:
    with AuditLog(target, load_private_key(key_path)) as log:
        indices = []
        for i in range(count):
            indices.append(log.append({"writer": writer, "i": i}))
            if i % 25 == 24:
                log.checkpoint()
    out.send(indices)


def test_two_processes_append_one_gap_free_log(audit_target: str | Path, key_path: Path) -> None:
    AuditLog(audit_target).close()  # schema first, so both workers open an existing log
    pipes = [FORK.Pipe(duplex=False) for _ in range(2)]
    procs = [
        FORK.Process(target=_appender, args=(audit_target, key_path, w, 100, pipes[w][1]))
        for w in range(2)
    ]
    for p in procs:
        p.start()
    results = [pipes[w][0].recv() for w in range(2)]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert sorted(results[0] + results[1]) == list(range(200))  # no gaps, no duplicates
    pub = load_public_key(Path(f"{key_path}.pub"))
    with AuditLog(audit_target, read_only=True) as log:
        summary = log.verify(pub)
        assert summary["entries"] == 200
        assert summary["checkpoints"] == 8
        sizes = [cp.size for cp in log.checkpoints()]
        assert sizes == sorted(sizes)  # taken under the sequencer's lock: never backwards
        for w in range(2):  # each writer's records sit at the indices it was told
            for i, idx in enumerate(results[w]):
                assert json.loads(log.get(idx)) == {"writer": w, "i": i}


def _endless_appender(target: str | Path, out: Connection) -> None:
    with AuditLog(target) as log:
        i = 0
        while True:
            out.send((log.append({"victim": i}), i))  # acknowledged only after append returned
            i += 1


def test_sigkilled_appender_loses_no_acknowledged_record(audit_target: str | Path) -> None:
    AuditLog(audit_target).close()
    recv, send = FORK.Pipe(duplex=False)
    proc = FORK.Process(target=_endless_appender, args=(audit_target, send))
    proc.start()
    acked = [recv.recv() for _ in range(40)]
    os.kill(proc.pid, signal.SIGKILL)  # mid-append, most likely inside a transaction
    proc.join(30)
    assert proc.exitcode == -signal.SIGKILL
    while recv.poll(0.2):  # acknowledgements already in the pipe count too
        acked.append(recv.recv())
    with AuditLog(audit_target) as log:  # a survivor takes over the sequence
        for idx, i in acked:
            assert json.loads(log.get(idx)) == {"victim": i}
        size = log.size
        assert size >= len(acked)
        assert log.append({"after": True}) == size
        assert log.verify()["entries"] == size + 1


@pytest.mark.postgres
def test_backends_give_identical_roots_and_proofs(tmp_path: Path, postgresql_url: str) -> None:
    logs = [AuditLog(tmp_path / "same.sqlite"), AuditLog(postgresql_url)]
    try:
        for i in range(37):
            assert {log.append({"i": i}) for log in logs} == {i}
        assert logs[0].root() == logs[1].root()
        for i in (0, 17, 36):
            assert logs[0].inclusion_proof(i) == logs[1].inclusion_proof(i)
        assert logs[0].consistency_proof(5) == logs[1].consistency_proof(5)
    finally:
        for log in logs:
            log.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.postgres
def test_unreachable_or_wrong_credentials_are_clear_errors_without_the_password(
    postgresql_server: Any,
) -> None:
    secret = "s3cret-Pa55word"
    unreachable = f"postgresql://postgres:{secret}@127.0.0.1:{_closed_port()}/audit"
    with pytest.raises(AuditStoreUnavailableError, match="cannot connect") as info:
        AuditLog(unreachable)
    assert secret not in str(info.value)
    assert "127.0.0.1" in str(info.value)
    wrong = postgresql_server.url("postgres", password=secret)
    with pytest.raises(AuditStoreUnavailableError, match="password authentication") as info:
        AuditLog(wrong, read_only=True)
    assert secret not in str(info.value)
    for bad, says in (
        (f"postgresql://postgres:{secret}@[::1/x", "malformed"),  # psycopg's text echoes it
        (f"postgresql://postgres:{secret}@127.0.0.1:5432/x?bogus=1", "malformed"),
        (f"postgresql://postgres:{secret}@127.0.0.1:notaport/x", "notaport"),
    ):
        with pytest.raises(AuditStoreUnavailableError, match=says) as info:
            AuditLog(bad)
        assert secret not in str(info.value)


@pytest.mark.postgres
def test_schema_is_versioned_and_newer_or_foreign_databases_are_refused(
    postgresql_url: str,
) -> None:
    import psycopg

    # a reader never creates anything: an empty database holds no log
    with pytest.raises(AuditLogFormatError, match="holds no hbt audit log"):
        AuditLog(postgresql_url, read_only=True)
    with psycopg.connect(postgresql_url) as con:
        assert con.execute("SELECT to_regclass('schema_version')").fetchone() == (None,)
    with AuditLog(postgresql_url) as log:
        log.append({"x": 1})
    with psycopg.connect(postgresql_url) as con:
        row = con.execute(
            "SELECT version FROM schema_version WHERE component = 'hbt_core.auditlog'"
        )
        assert row.fetchone() == (PG_SCHEMA_VERSION,)
        con.execute("UPDATE schema_version SET version = 99")
    for read_only in (False, True):
        with pytest.raises(AuditLogFormatError, match="schema version 99"):
            AuditLog(postgresql_url, read_only=read_only)
    with psycopg.connect(postgresql_url) as con:  # our tables, but no version: refused
        con.execute("DELETE FROM schema_version")
    with pytest.raises(AuditLogFormatError, match="no audit-log schema version"):
        AuditLog(postgresql_url)
    with psycopg.connect(postgresql_url) as con:
        assert con.execute("SELECT count(*) FROM hbt_audit_entries").fetchone() == (1,)


@pytest.mark.postgres
def test_read_only_session_cannot_write(postgresql_url: str, key_path: Path) -> None:
    with AuditLog(postgresql_url) as log:
        log.append({"x": 1})
    with AuditLog(postgresql_url, load_private_key(key_path), read_only=True) as log:
        for write in (lambda: log.append({"x": 2}), log.checkpoint):
            with pytest.raises(InvalidInputError, match="read-only"):
                write()
        with pytest.raises(InvalidInputError, match="not a file"):
            _ = log.path
        assert log.size == 1


@pytest.mark.postgres
def test_log_verify_cli_on_postgres(
    postgresql_url: str,
    key_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with AuditLog(postgresql_url, load_private_key(key_path)) as log:
        for i in range(6):
            log.append({"i": i})
        log.checkpoint()
    # the password from PGPASSWORD (libpq), so it is not on the command line
    user, rest = postgresql_url.removeprefix("postgresql://").split("@", 1)
    monkeypatch.setenv("PGPASSWORD", user.split(":", 1)[1])
    url = f"postgresql://postgres@{rest}"
    args = ["--output-format", "json", "log-verify", "--db", url, "--public-key", f"{key_path}.pub"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["entries"] == 6
    monkeypatch.setenv("PGPASSWORD", "wrong-password")
    assert main(args) == 2
    assert "wrong-password" not in capsys.readouterr().err
    monkeypatch.setenv("PGPASSWORD", user.split(":", 1)[1])
    import psycopg

    with psycopg.connect(postgresql_url) as con:
        con.execute("UPDATE hbt_audit_entries SET data = %s WHERE idx = 4", (b'{"i":40}',))
    assert main(args) == 1
    assert "entry 4" in capsys.readouterr().out


@pytest.mark.postgres
def test_a_lost_connection_is_a_typed_error_and_loses_nothing(postgresql_url: str) -> None:
    import psycopg

    log = AuditLog(postgresql_url)
    log.append({"before": 1})
    with psycopg.connect(postgresql_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    with pytest.raises(AuditStoreUnavailableError, match="failed") as info:
        log.append({"after": 1})
    assert postgresql_url.split(":")[2].split("@")[0] not in str(info.value)  # the password
    log.close()
    with AuditLog(postgresql_url, read_only=True) as again:
        assert again.size == 1
        assert again.verify()["entries"] == 1


@pytest.mark.postgres
def test_postgres_head_row_betrays_a_cut_tail(postgresql_url: str) -> None:
    import psycopg

    with AuditLog(postgresql_url) as log:
        for i in range(6):
            log.append({"i": i})
    with psycopg.connect(postgresql_url) as con:
        con.execute("DELETE FROM hbt_audit_entries WHERE idx >= 4")
    with (
        AuditLog(postgresql_url, read_only=True) as log,
        pytest.raises(IntegrityError, match="recorded 6 entries but the log holds 4"),
    ):
        log.verify()
