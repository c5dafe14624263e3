"""One database URL for every store: the drift latch on both backends, `resontinex serve`
refusing stores it cannot use (exit 2, never a silent fresh store), and two server processes
writing one PostgreSQL audit log, one of them killed with SIGKILL under load."""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from hbt_core import AuditLog, generate_key, load_private_key
from resontinex.pipeline import DriftSettings, DriftWatch, LocalModelBackend, ModelWorker
from resontinex.pipeline import state as state_module
from resontinex.pipeline.errors import (
    PipelineConfigError,
    StateFormatError,
    StateStoreError,
    StateUnavailableError,
)
from resontinex.pipeline.factory import (
    PipelineSettings,
    key_fingerprint,
    open_audit_log,
    prepare_state,
)
from resontinex.pipeline.state import (
    LATCH_VERSION,
    SQLiteLatch,
    StateLocation,
    open_drift_latch,
)

BIN = Path(sys.executable).parent
CLI = str(BIN / "resontinex")
HBT = str(BIN / "hbt")
TOKEN = "state-test-token-0123456789"
FORK = multiprocessing.get_context("fork")  # test modules are not importable by name (importlib)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def latch_target(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgresql_url"))
    return tmp_path / "drift-latch.sqlite"


def test_the_latch_survives_a_reopen_and_is_shared(latch_target: str | Path) -> None:
    first, second = open_drift_latch(latch_target), open_drift_latch(latch_target)
    try:
        assert first.read() is False
        first.set(True, "drift alarm: test")
        assert second.read() is True  # another process's view
    finally:
        first.close()
        second.close()
    reopened = open_drift_latch(latch_target)
    try:
        assert reopened.read() is True
        reopened.set(False, "acknowledged")
        assert reopened.read() is False
    finally:
        reopened.close()


def test_a_newer_latch_schema_is_refused(latch_target: str | Path) -> None:
    open_drift_latch(latch_target).close()
    newer = LATCH_VERSION + 1
    if isinstance(latch_target, Path):
        with closing(sqlite3.connect(latch_target)) as db:
            db.execute(f"PRAGMA user_version = {newer}")
    else:
        with psycopg.connect(latch_target, autocommit=True) as db:
            db.execute(
                "UPDATE schema_version SET version = %s WHERE component = %s",
                (newer, "resontinex.drift_latch"),
            )
    with pytest.raises(StateFormatError, match=f"schema version {newer}.*upgrade resontinex"):
        open_drift_latch(latch_target)


def test_a_corrupt_or_foreign_latch_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"not a database" * 100)
    with pytest.raises(StateFormatError, match="not a readable drift latch"):
        SQLiteLatch(garbage)
    assert garbage.read_bytes() == b"not a database" * 100
    foreign = tmp_path / "foreign.sqlite"
    with closing(sqlite3.connect(foreign)) as db:
        db.execute("CREATE TABLE something (x)")
    with pytest.raises(StateFormatError, match="not a drift latch"):
        SQLiteLatch(foreign)


def _open_together(directory: str, files: int, start: Any) -> None:
    for i in range(files):
        start.wait(timeout=30)  # a worker that died breaks the barrier for the others
        SQLiteLatch(Path(directory) / f"new-{i}.sqlite").close()


def test_processes_creating_one_new_latch_file_together_all_open_it(tmp_path: Path) -> None:
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


def test_a_new_latch_file_opens_once_its_creator_commits(tmp_path: Path) -> None:
    """The race's loser, made deterministic: another connection holds the new file's write lock
    while the latch converts it to WAL, and SQLite answers "locked" at once; the latch waits."""
    path = tmp_path / "new.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the winner, between taking the lock and committing
    outcome: list[object] = []

    def open_it() -> None:
        try:
            SQLiteLatch(path).close()
            outcome.append("opened")
        except StateStoreError as exc:
            outcome.append(exc)

    opener = threading.Thread(target=open_it)
    opener.start()
    opener.join(0.5)  # time to meet the lock; a slow start can only hide a regression
    holder.execute("COMMIT")
    holder.close()
    opener.join(60)
    assert outcome == ["opened"]


def test_a_latch_file_locked_past_the_busy_timeout_is_unavailable_not_foreign(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state_module, "SQLITE_BUSY_TIMEOUT_S", 0.2)
    path = tmp_path / "held.sqlite"
    with closing(sqlite3.connect(path, isolation_level=None)) as holder:
        holder.execute("BEGIN EXCLUSIVE")  # another process in the middle of a write
        with pytest.raises(StateUnavailableError, match=r"held\.sqlite.*busy.*locked"):
            SQLiteLatch(path)
    SQLiteLatch(path).close()  # once the lock is released the file opens


@pytest.mark.postgres
def test_a_foreign_latch_table_is_refused(postgresql_url: str) -> None:
    with psycopg.connect(postgresql_url, autocommit=True) as db:
        db.execute("CREATE TABLE resontinex_drift_latch (x INTEGER)")
    with pytest.raises(StateFormatError, match="no schema version"):
        open_drift_latch(postgresql_url)


@pytest.mark.postgres
def test_wrong_credentials_name_the_database_never_the_password(
    postgresql_server: Any,
) -> None:
    url = postgresql_server.url(password="not-the-password-S3CRET")
    with pytest.raises(StateUnavailableError) as caught:
        open_drift_latch(url)
    text = str(caught.value)
    assert f"postgresql://postgres@127.0.0.1:{postgresql_server.port}/postgres" in text
    assert "S3CRET" not in text


def test_a_database_url_must_be_postgresql_and_is_never_echoed() -> None:
    with pytest.raises(PipelineConfigError, match="must be a postgresql:// URL") as caught:
        StateLocation(Path("."), "mysql://u:hunter2@h/db")
    assert "hunter2" not in str(caught.value)
    with pytest.raises(PipelineConfigError, match="malformed") as caught:
        StateLocation(Path("."), "postgresql://u:hunter2@h:notaport/db")
    assert "hunter2" not in str(caught.value)
    assert StateLocation(Path("."), "postgresql://u:pw@h:5/db").where == "postgresql://u@h:5/db"


def test_the_watch_reads_the_shared_latch_and_fails_closed(tmp_path: Path, model_dir: Path) -> None:
    path = tmp_path / "drift-latch.sqlite"
    with ModelWorker(model_dir) as worker:
        watch = DriftWatch(
            LocalModelBackend(worker).fingerprint_model(),
            DriftSettings(n_probes=4, calibration_runs=2),
            latch=open_drift_latch(path),
        )
        other = open_drift_latch(path)  # another replica's alarm
        assert watch.flagged is False
        other.set(True, "drift alarm: another replica")
        assert watch.flagged is True
        watch.acknowledge()
        assert other.read() is False
        other.close()
        watch.latch.close()  # an unreadable latch counts as set
        assert watch.flagged is True


# ---------------------------------------------------------------- resontinex serve


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def shared_key(tmp_path: Path) -> dict[str, str]:
    """The environment of replicas sharing one signing key, as a database URL requires."""
    generate_key(tmp_path / "signing-key.pem")
    return {"HBT_SIGNING_KEY_PATH": str(tmp_path / "signing-key.pem")}


def serve_refused(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [CLI, "serve", "--port", str(free_port()), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 2, proc.stderr
    assert "cannot start" in proc.stderr or "refused" in proc.stderr
    return proc


@pytest.mark.postgres
def test_serve_refuses_an_unreachable_database_or_wrong_credentials(
    tmp_path: Path, postgresql_server: Any, shared_key: dict[str, str]
) -> None:
    closed = f"postgresql://postgres:S3CRET@127.0.0.1:{free_port()}/postgres"
    proc = serve_refused("--state-dir", str(tmp_path), "--database-url", closed, env=shared_key)
    assert "AuditStoreUnavailableError" in proc.stderr
    assert "S3CRET" not in proc.stderr
    wrong = postgresql_server.url(password="S3CRET-wrong")
    env = {"RESONTINEX_DATABASE_URL": wrong, **shared_key}
    proc = serve_refused("--state-dir", str(tmp_path), env=env)
    assert "password authentication failed" in proc.stderr
    assert "S3CRET" not in proc.stderr
    assert not (tmp_path / "audit.sqlite").exists()  # never a silent fresh SQLite store


@pytest.mark.postgres
def test_serve_refuses_a_database_of_a_newer_schema(
    tmp_path: Path, postgresql_url: str, shared_key: dict[str, str]
) -> None:
    AuditLog(postgresql_url).close()
    with psycopg.connect(postgresql_url, autocommit=True) as db:
        db.execute("UPDATE schema_version SET version = 99 WHERE component = 'hbt_core.auditlog'")
    args = ("--state-dir", str(tmp_path), "--database-url", postgresql_url)
    proc = serve_refused(*args, env=shared_key)
    assert "schema version 99" in proc.stderr


@pytest.mark.postgres
def test_replicas_must_share_the_signing_key_of_the_shared_log(
    tmp_path: Path, postgresql_url: str, shared_key: dict[str, str]
) -> None:
    """Checkpoints signed by two keys would make the one audit log unverifiable: a database URL
    without HBT_SIGNING_KEY_PATH, or with another key than the log's, never serves."""
    args = ("--state-dir", str(tmp_path / "node"), "--database-url", postgresql_url)
    unset = {k: v for k, v in os.environ.items() if k != "HBT_SIGNING_KEY_PATH"}
    proc = subprocess.run(
        [CLI, "serve", "--port", str(free_port()), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=unset,
    )
    assert proc.returncode == 2
    assert "HBT_SIGNING_KEY_PATH is not set" in proc.stderr
    assert not (tmp_path / "node" / "audit-signing-key.pem").exists()  # no per-node key made

    settings = PipelineSettings(
        state_dir=tmp_path / "first",
        signing_key_path=Path(shared_key["HBT_SIGNING_KEY_PATH"]),
        database_url=postgresql_url,
    )
    prepare_state(settings)  # the first replica pins its key
    generate_key(tmp_path / "other-key.pem")
    other = {"HBT_SIGNING_KEY_PATH": str(tmp_path / "other-key.pem")}
    proc = serve_refused(*args, env=other)
    assert "is not the key recorded for the shared audit log" in proc.stderr
    assert "HBT_SIGNING_KEY_PATH" in proc.stderr

    with open_audit_log(settings) as log:  # a log from before the pin: its checkpoints decide
        log.append({"decision": "execute"})
        log.checkpoint()
    with psycopg.connect(postgresql_url, autocommit=True) as db:
        db.execute("DROP TABLE resontinex_signing_key")
        db.execute("DELETE FROM schema_version WHERE component = 'resontinex.signing_key'")
    proc = serve_refused(*args, env=other)
    assert "did not sign the shared audit log's checkpoints" in proc.stderr
    prepare_state(settings)  # the right key is accepted, and pinned again
    with psycopg.connect(postgresql_url, autocommit=True) as db:
        pinned = db.execute("SELECT fingerprint FROM resontinex_signing_key").fetchone()
    assert pinned == (key_fingerprint(load_private_key(shared_key["HBT_SIGNING_KEY_PATH"])),)


def test_serve_refuses_a_corrupt_sqlite_store(tmp_path: Path) -> None:
    (tmp_path / "audit.sqlite").write_bytes(b"\x00garbage" * 512)
    proc = serve_refused("--state-dir", str(tmp_path))
    assert "audit.sqlite" in proc.stderr
    assert (tmp_path / "audit.sqlite").read_bytes() == b"\x00garbage" * 512
    (tmp_path / "audit.sqlite").unlink()
    (tmp_path / "drift-latch.sqlite").write_bytes(b"\x00garbage" * 512)
    proc = serve_refused("--state-dir", str(tmp_path))
    assert "drift-latch.sqlite" in proc.stderr


def test_serve_refuses_a_non_postgresql_url_and_zero_workers(tmp_path: Path) -> None:
    proc = serve_refused("--state-dir", str(tmp_path), "--database-url", "mysql://u:S3CRET@h/d")
    assert "postgresql://" in proc.stderr
    assert "S3CRET" not in proc.stderr
    proc = subprocess.run(
        [CLI, "serve", "--workers", "0"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "at least 1" in proc.stderr


class Server:
    """`resontinex serve` as an operator runs it: its own process, state dir and port."""

    def __init__(self, state_dir: Path, model_dir: Path, env: dict[str, str], *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (state_dir.parent / f"{state_dir.name}.log").open("w")
        self.proc = subprocess.Popen(
            [
                CLI,
                "serve",
                "--port",
                str(self.port),
                "--state-dir",
                str(state_dir),
                "--model-dir",
                str(model_dir),
                *args,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            start_new_session=True,
        )

    def wait_ready(self, workers: int = 1, timeout: float = 600) -> None:
        """Every worker has built its pipeline: ``resontinex_ready`` (the minimum over live
        workers) is 1 and the members' per-worker gauges name ``workers`` processes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, Path(self.log.name).read_text()[-3000:]
            try:
                text = httpx.get(f"{self.url}/metrics", timeout=5).text
            except httpx.HTTPError:
                text = ""
            ready = metric_total(text, "resontinex_ready") == 1
            if ready and (workers == 1 or len(worker_pids(text)) == workers):
                return
            time.sleep(0.3)
        raise AssertionError(f"not ready: {Path(self.log.name).read_text()[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)  # the server and its workers
        self.proc.wait(timeout=60)
        self.log.close()


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.kill(signal.SIGTERM)


def run_pipeline(url: str, i: int) -> dict[str, Any] | None:
    """One governed request; the result when acknowledged (200), None when the server died."""
    try:
        response = httpx.post(
            f"{url}/pipeline/run",
            json={"prompt": f"Add tracing to service {i}", "category": "infrastructure_management"},
            headers={"X-Request-ID": f"req-{i}"},
            timeout=300,
        )
    except httpx.HTTPError:
        return None
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.mark.postgres
@pytest.mark.slow
def test_two_servers_write_one_audit_log_and_a_killed_one_loses_nothing_acknowledged(
    tmp_path: Path, model_dir: Path, postgresql_url: str, servers: list[Server]
) -> None:
    generate_key(tmp_path / "signing-key.pem")  # one key for every replica
    env = {"RESONTINEX_DATABASE_URL": postgresql_url, "RESONTINEX_API_TOKEN": TOKEN}
    env["HBT_SIGNING_KEY_PATH"] = str(tmp_path / "signing-key.pem")
    servers += [Server(tmp_path / f"node{n}", model_dir, env) for n in range(2)]
    for server in servers:
        server.wait_ready()
    victim, survivor = servers
    first = run_pipeline(survivor.url, 1000)
    assert first is not None
    acknowledged: list[dict[str, Any]] = [first]
    budget = admitted_estimate(first) * 12  # one budget for both: room for some of 64 requests
    started = httpx.post(
        f"{victim.url}/fusion/budget/period",
        json={"period": "shared", "budget": budget},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=60,
    )
    assert started.status_code == 200, started.text
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        first = [pool.submit(run_pipeline, servers[i % 2].url, i) for i in range(24)]
        acknowledged += [r for f in first if (r := f.result()) is not None]
        later = [pool.submit(run_pipeline, servers[i % 2].url, i) for i in range(24, 64)]
        time.sleep(1.0)
        victim.kill()  # SIGKILL with requests in flight
        acknowledged += [r for f in later if (r := f.result()) is not None]
    assert len(acknowledged) >= 1 + 24 + 20  # every request to the survivor, the first batch
    indices = [r["audit_index"] for r in acknowledged]
    assert len(set(indices)) == len(indices)
    admitted = [r for r in acknowledged[1:] if admitted_estimate(r) > 0]
    assert 0 < len(admitted) < 64
    assert sum(admitted_estimate(r) for r in admitted) <= budget  # never overspent
    ledger = httpx.get(f"{survivor.url}/fusion/budget/status", timeout=60).json()["ledger"]
    # the victim's reservations in flight are kept (they hold budget until released)
    assert ledger["committed"] + ledger["reserved"] <= budget + ledger["overrun"]

    verified = subprocess.run(
        [CLI, "verify-audit", postgresql_url, "--output-format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verified.returncode == 0, verified.stderr
    report = json.loads(verified.stdout)
    assert report["valid"] is True
    assert report["entries"] >= len(acknowledged)
    hbt = subprocess.run(
        [HBT, "log-verify", "--db", postgresql_url], capture_output=True, text=True, timeout=120
    )
    assert hbt.returncode == 0, hbt.stderr
    with AuditLog(postgresql_url, read_only=True) as log:
        assert log.size == report["entries"]
        for result in acknowledged:  # each acknowledged decision is where the caller was told
            record = json.loads(log.get(result["audit_index"]))
            assert record["request_id"] == result["request_id"]
    with psycopg.connect(postgresql_url) as db:
        (n, lo, hi) = db.execute(
            "SELECT COUNT(*), MIN(idx), MAX(idx) FROM hbt_audit_entries"
        ).fetchone()
    assert (lo, hi) == (0, n - 1)  # no gaps, no duplicate indices
    assert survivor.proc.poll() is None
    assert httpx.get(f"{survivor.url}/health/ready").status_code == 200


def admitted_estimate(result: dict[str, Any]) -> float:
    """What the ledger reserved for this request (0 when the budget stage denied it)."""
    budget = next(s for s in result["stages"] if s["name"] == "budget")["output"]
    return 0.0 if "denied" in budget else float(budget["estimate"])


def worker_pids(text: str) -> set[str]:
    """The worker processes named by per-worker (``pid``-labelled) series."""
    return {line.split('pid="')[1].split('"')[0] for line in text.splitlines() if 'pid="' in line}


def metric_total(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        named = line.startswith((name + "{", name + " "))
        if named and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.mark.postgres
@pytest.mark.slow
def test_two_workers_share_one_budget_and_their_metrics_add_up(
    tmp_path: Path,
    model_dir: Path,
    postgresql_url: str,
    servers: list[Server],
    shared_key: dict[str, str],
) -> None:
    env = {"RESONTINEX_DATABASE_URL": postgresql_url, "RESONTINEX_API_TOKEN": TOKEN, **shared_key}
    server = Server(tmp_path / "node", model_dir, env, "--workers", "2")
    servers.append(server)
    server.wait_ready(workers=2)
    first = run_pipeline(server.url, 0)
    assert first is not None
    budget = admitted_estimate(first) * 8  # room for a few requests, not for 200
    auth = {"Authorization": f"Bearer {TOKEN}"}
    started = httpx.post(
        f"{server.url}/fusion/budget/period",
        json={"period": "qa-2", "budget": budget},
        headers=auth,
        timeout=60,
    )
    assert started.status_code == 200, started.text
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = [r for r in pool.map(lambda i: run_pipeline(server.url, i), range(1, 201))]
    assert all(r is not None for r in results)
    admitted = [r for r in results if r is not None and admitted_estimate(r) > 0]
    assert 0 < len(admitted) < 200
    assert sum(admitted_estimate(r) for r in admitted) <= budget  # never overspent
    spent = sum(r["cost_units"] for r in admitted)
    for _ in range(6):  # both workers answer: each sees the one ledger
        status = httpx.get(f"{server.url}/fusion/budget/status", timeout=60).json()
        assert status["ledger"]["committed"] == pytest.approx(spent)

    for _ in range(6):  # any worker's scrape counts every worker's decisions
        text = httpx.get(f"{server.url}/metrics", timeout=60).text
        assert metric_total(text, "resontinex_pipeline_decisions_total") == 201
        assert metric_total(text, "resontinex_http_requests_total", route="/pipeline/run") == 201
        assert len(worker_pids(text)) == 2  # members' gauges are per worker (mode "all")

    latch = open_drift_latch(postgresql_url)  # an alarm raised by another replica
    latch.set(True, "drift alarm: another replica")
    for _ in range(6):
        health = httpx.get(f"{server.url}/health", timeout=60).json()
        assert health["components"]["drift"]["flagged"] is True
    assert httpx.post(f"{server.url}/hbt/drift/acknowledge", timeout=60).status_code == 401
    cleared = httpx.post(f"{server.url}/hbt/drift/acknowledge", headers=auth, timeout=60)
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["flagged"] is False
    assert latch.read() is False  # cleared for every worker and replica
    latch.close()


@pytest.mark.postgres
def test_verify_audit_of_a_database_reads_only_and_refuses_what_is_not_a_log(
    postgresql_url: str,
) -> None:
    def verify(target: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CLI, "verify-audit", target], capture_output=True, text=True, timeout=120
        )

    empty = verify(postgresql_url)  # nothing there: refused, and nothing created
    assert empty.returncode == 2
    assert "holds no hbt audit log" in empty.stderr
    with psycopg.connect(postgresql_url) as db:
        assert db.execute("SELECT to_regclass('hbt_audit_entries')").fetchone() == (None,)
    malformed = verify("postgresql://u:S3CRET@h:notaport/db")
    assert malformed.returncode == 2
    assert "malformed" in malformed.stderr
    assert "S3CRET" not in malformed.stderr


@pytest.mark.slow
def test_kill_9_and_restart_on_sqlite_keeps_the_ledger_latch_and_log(
    tmp_path: Path, model_dir: Path, servers: list[Server]
) -> None:
    """The operator's report of issue 13: a period with spend came back empty after kill -9."""
    state, env = tmp_path / "node", {"RESONTINEX_API_TOKEN": TOKEN}
    auth = {"Authorization": f"Bearer {TOKEN}"}
    first = Server(state, model_dir, env)
    servers.append(first)
    first.wait_ready()
    started = httpx.post(
        f"{first.url}/fusion/budget/period",
        json={"period": "qa-2", "budget": 1_000_000},
        headers=auth,
        timeout=60,
    )
    assert started.status_code == 200, started.text
    results = [run_pipeline(first.url, i) for i in range(3)]
    before = httpx.get(f"{first.url}/fusion/budget/status", timeout=60).json()["ledger"]
    assert before["committed"] > 0
    latch = open_drift_latch(state / "drift-latch.sqlite")
    latch.set(True, "drift alarm: before the crash")
    latch.close()
    first.kill()  # SIGKILL

    second = Server(state, model_dir, env)
    servers.append(second)
    second.wait_ready()
    after = httpx.get(f"{second.url}/fusion/budget/status", timeout=60).json()["ledger"]
    assert (after["period"], after["budget"]) == ("qa-2", 1_000_000)
    assert after["committed"] == pytest.approx(before["committed"])
    health = httpx.get(f"{second.url}/health", timeout=60).json()
    assert health["components"]["drift"]["flagged"] is True
    assert health["components"]["audit"]["entries"] == 3
    verified = subprocess.run(
        [CLI, "verify-audit", str(state / "audit.sqlite")], capture_output=True, text=True
    )
    assert verified.returncode == 0, verified.stderr
    assert all(r is not None for r in results)


@pytest.mark.postgres
@pytest.mark.slow
def test_every_route_of_a_store_answers_503_while_the_database_is_down(
    tmp_path: Path,
    model_dir: Path,
    postgresql_cluster: Any,
    servers: list[Server],
    shared_key: dict[str, str],
) -> None:
    """A store that fails mid-request is a 503 with Retry-After on every route that reads or
    writes it (status pages too), never a 500."""
    env = {
        "RESONTINEX_DATABASE_URL": postgresql_cluster.create_database("outage"),
        "RESONTINEX_API_TOKEN": TOKEN,
        "RESONTINEX_BREAK_GLASS_OPERATORS": "alice",
        **shared_key,
    }
    server = Server(tmp_path / "node", model_dir, env)
    servers.append(server)
    server.wait_ready()
    assert run_pipeline(server.url, 0) is not None  # audit record 0
    auth = {"Authorization": f"Bearer {TOKEN}"}
    override = {
        "alignment_score": 0.1,
        "epistemic_risk": 0.9,
        "confidence_band": 0.9,
        "override_reason": "incident 42",
        "operator_id": "alice",
    }
    routes: list[tuple[str, str, dict[str, Any] | None, dict[str, str], str]] = [
        ("GET", "/fusion/budget/status", None, {}, "the budget ledger"),
        ("GET", "/fusion/health", None, {}, "the budget ledger"),
        ("GET", "/audit/proof/0", None, {}, "the audit log"),
        ("POST", "/fusion/budget/period", {"period": "p2", "budget": 10.0}, auth, "ledger"),
        (
            "POST",
            "/pipeline/run",
            {"prompt": "Add tracing", "category": "infrastructure_management"},
            {},
            "",
        ),
        ("POST", "/trust/break-glass", override, auth, "the break-glass chain"),
        ("POST", "/hbt/drift/acknowledge", None, auth, "the drift latch"),
    ]
    postgresql_cluster.crash()
    for method, path, body, headers, store in routes:
        answer = httpx.request(
            method, f"{server.url}{path}", json=body, headers=headers, timeout=60
        )
        assert answer.status_code == 503, (path, answer.text)
        assert answer.headers["retry-after"] == "5"
        assert store in answer.json()["detail"], (path, answer.text)
        assert "is unavailable" in answer.json()["detail"]
    health = httpx.get(f"{server.url}/health", timeout=60)
    assert health.status_code == 503
    components = health.json()["components"]
    assert components["fusion"]["status"] == components["audit"]["status"] == "unhealthy"

    postgresql_cluster.start()  # every store replaces its lost connection
    assert httpx.get(f"{server.url}/fusion/budget/status", timeout=60).status_code == 200
    assert httpx.get(f"{server.url}/audit/proof/0", timeout=60).status_code == 200


@pytest.mark.slow
def test_a_sqlite_ledger_locked_past_its_busy_timeout_is_a_503(
    tmp_path: Path, model_dir: Path, servers: list[Server]
) -> None:
    """The default store: another process holding the ledger's write lock past the busy
    timeout (10 s) makes a budget change a 503 naming the ledger, nothing is changed, and the
    change goes through once the lock is gone. (Readers are not blocked by a writer in WAL
    mode, and a WAL file cannot be locked exclusively while the service has it open, so the
    read-only routes' 503 is tested against a stopped PostgreSQL above.)"""
    state = tmp_path / "node"
    server = Server(state, model_dir, {"RESONTINEX_API_TOKEN": TOKEN})
    servers.append(server)
    server.wait_ready()
    period = {"period": "qa-3", "budget": 5000.0}
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with closing(sqlite3.connect(state / "ledger.sqlite", isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        locked = httpx.post(
            f"{server.url}/fusion/budget/period", json=period, headers=auth, timeout=60
        )
        other.execute("ROLLBACK")
    assert locked.status_code == 503, locked.text
    assert locked.headers["retry-after"] == "5"
    assert "the budget ledger is unavailable" in locked.json()["detail"]
    status = httpx.get(f"{server.url}/fusion/budget/status", timeout=60).json()
    assert status["ledger"]["period"] != "qa-3"
    started = httpx.post(
        f"{server.url}/fusion/budget/period", json=period, headers=auth, timeout=60
    )
    assert started.status_code == 200, started.text
