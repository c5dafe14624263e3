"""One sequencer whoever appends: real processes appending to one log on each backend, a
SIGKILLed appender, and the PostgreSQL store's open-time refusals (unreachable, wrong
credentials, newer schema, foreign tables) with the password never in a message."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import socket
import sqlite3
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

from hbt_core import auditstore
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


def _open_together(directory: str, files: int, start: Any) -> None:
    for i in range(files):
        start.wait(timeout=30)  # a worker that died breaks the barrier for the others
        AuditLog(Path(directory) / f"new-{i}.sqlite").close()


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


def test_a_file_locked_past_the_busy_timeout_is_unavailable_not_foreign(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auditstore, "SQLITE_BUSY_TIMEOUT_S", 0.2)
    path = tmp_path / "held.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")  # another process in the middle of a write
        with pytest.raises(AuditStoreUnavailableError, match=r"held\.sqlite.*busy.*locked"):
            AuditLog(path)
    finally:
        holder.close()
    AuditLog(path).close()  # once the lock is released the file opens


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


def _terminate_others(url: str) -> None:
    """pg_terminate_backend of every other session on the test's database."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.mark.postgres
def test_a_lost_connection_fails_one_call_and_the_next_reconnects(postgresql_url: str) -> None:
    log = AuditLog(postgresql_url)
    log.append({"before": 1})
    _terminate_others(postgresql_url)
    with pytest.raises(AuditStoreUnavailableError, match="failed") as info:
        log.append({"after": 1})
    assert postgresql_url.split(":")[2].split("@")[0] not in str(info.value)  # the password
    assert log.append({"again": 1}) == 1  # a new session; the failed append left nothing
    _terminate_others(postgresql_url)
    with pytest.raises(AuditStoreUnavailableError):
        log.size  # noqa: B018  # reads fail once too, then reconnect
    assert log.size == 2
    log.close()
    with AuditLog(postgresql_url, read_only=True) as again:
        assert again.size == 2
        assert again.verify()["entries"] == 2


@pytest.mark.postgres
def test_a_reader_reconnects_read_only(postgresql_url: str) -> None:
    with AuditLog(postgresql_url) as log:
        log.append({"i": 0})
    reader = AuditLog(postgresql_url, read_only=True)
    _terminate_others(postgresql_url)
    with pytest.raises(AuditStoreUnavailableError):
        reader.get(0)
    assert reader.get(0) == b'{"i":0}'
    session = reader._store._db  # type: ignore[attr-defined]
    assert session.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
    assert reader.verify()["entries"] == 1
    reader.close()


@pytest.mark.postgres
def test_the_store_is_unavailable_while_the_server_is_down_and_back_after(
    postgresql_cluster: Any,
) -> None:
    url = postgresql_cluster.url()
    log = AuditLog(url)
    log.append({"before": 1})
    postgresql_cluster.crash()
    for _ in range(2):  # the broken session, then a connect that is refused
        with pytest.raises(AuditStoreUnavailableError):
            log.append({"while": "down"})
    postgresql_cluster.start()
    assert log.append({"after": 1}) == 1
    assert log.verify()["entries"] == 2
    log.close()


class _CommitCutter:
    """A TCP proxy on 127.0.0.1 in front of the server that cuts the store's connection at its
    next COMMIT: before passing it on (nothing stored) or once the server answered it (stored,
    the answer lost): the two sides of a commit whose outcome the client cannot know."""

    def __init__(self, port: int) -> None:
        self._upstream = port
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.cut: str | None = None  # "before" or "after" the server commits
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self._upstream))
            state = {"answer_lost": False}
            threading.Thread(target=self._up, args=(client, server, state), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client, state), daemon=True).start()

    def _up(self, client: socket.socket, server: socket.socket, state: dict[str, bool]) -> None:
        while chunk := self._recv(client):
            if self.cut is not None and b"COMMIT" in chunk:
                mode, self.cut = self.cut, None
                if mode == "before":
                    self._close(client, server)
                    return
                state["answer_lost"] = True
            server.sendall(chunk)
        self._close(client, server)

    def _down(self, server: socket.socket, client: socket.socket, state: dict[str, bool]) -> None:
        while chunk := self._recv(server):
            if state["answer_lost"]:
                break
            client.sendall(chunk)
        self._close(client, server)

    @staticmethod
    def _recv(sock: socket.socket) -> bytes:
        try:
            return sock.recv(65536)
        except OSError:
            return b""

    @staticmethod
    def _close(*socks: socket.socket) -> None:
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self._server.close()


@pytest.mark.postgres
@pytest.mark.parametrize("cut", ["before", "after"])
def test_an_append_whose_commit_is_unknown_is_read_back_not_repeated(
    postgresql_url: str, cut: str
) -> None:
    """The connection breaks during COMMIT. "after": the server committed, so the append is
    acknowledged once (not stored twice); "before": it was not stored, the caller hears so and
    the index stays free."""
    port = int(postgresql_url.rsplit(":", 1)[1].split("/")[0])
    proxy = _CommitCutter(port)
    url = postgresql_url.replace(f":{port}/", f":{proxy.port}/") + "?sslmode=disable"
    log = AuditLog(url)
    log.append({"before": 1})
    proxy.cut = cut
    if cut == "after":
        assert log.append({"unknown": 1}) == 1
    else:
        with pytest.raises(AuditStoreUnavailableError, match="entry 1 was not stored"):
            log.append({"unknown": 1})
    assert log.append({"next": 1}) == (2 if cut == "after" else 1)
    log.close()
    proxy.close()
    with AuditLog(postgresql_url, read_only=True) as again:
        records = [json.loads(again.get(i)) for i in range(again.size)]
        assert again.verify()["entries"] == len(records)
    expected = [{"before": 1}, {"unknown": 1}, {"next": 1}]
    assert records == (expected if cut == "after" else [expected[0], expected[2]])


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
