"""`POST /trust/evaluate` throughput of `resontinex serve` with 1, 2 and 4 worker processes, the
state in SQLite files vs one PostgreSQL database, in one run.

Each configuration is a real `resontinex serve --workers N` process (uvicorn workers, metrics in
prometheus-client's multiprocess mode) on 127.0.0.1, loaded by wrk (1 thread, 64 connections, so
that the kernel's hand-out of connections to the workers sharing one listening socket stays even;
Debian's ``wrk``, installed by ``make bench``; without it an httpx loop, and the table says so).
The peer of N workers is 1 worker of the same backend, measured in the same run, so the ratio is
the scaling (goal: >= 1.7x at 2 workers). PostgreSQL is a throw-away cluster
(tools/pg_cluster.py, fsync on); every server of a run shares one signing key, as replicas must.

Why the method: these machines are shared, and the CPU left to this run drifts by the minute.
So every configuration of a backend serves at once (each ready, warmed up) and the load visits
them in turn, several rounds; each row is the median round. Next to requests/s the table prints
what explains them: the CPU time the server's processes (all workers) and wrk spent per
request (/proc/<pid>/task/*/schedstat and getrusage), how much of the machine's cores the run
got ("CPU share"), and which part of the time the server's threads were ready to run they
spent waiting in the scheduler's run queue for a core (the cost of sharing the cores with other
jobs, which no code change removes). Equal CPU per request at 1 and 2 workers means the
workers do not get in each other's way, and the throughput ratio is then bounded by the cores
the run was given. On PostgreSQL it also counts the database's transactions per request
(pg_stat_database): `/trust/evaluate` should cause none.

Run: python benchmarks/bench_workers.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from bench_service import CACHE, MODEL_SPEC, load, wrk_load

from cert.trajectory import build_tiny_model
from hbt_core import generate_key

REPO = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "resontinex")
SIGNALS = {"alignment_score": 0.7, "epistemic_risk": 0.2, "confidence_band": 0.3}
CONNECTIONS = 64


@contextlib.contextmanager
def postgres_cluster() -> Iterator[Any]:
    """A throw-away cluster: the repo's tools/pg_cluster.py, loaded by path (run this from a
    checkout). fsync stays on: commits are as durable as in production."""
    spec = importlib.util.spec_from_file_location(
        "resontinex_tools_pg_cluster", REPO / "tools" / "pg_cluster.py"
    )
    assert spec is not None
    assert spec.loader is not None
    helper = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = helper  # its dataclasses look their module up there
    spec.loader.exec_module(helper)
    with helper.running_cluster() as cluster:
        yield cluster


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def group_sched_seconds(pgid: int) -> tuple[float, float]:
    """Seconds on a CPU and seconds runnable but waiting for one (the scheduler's run queue),
    summed over every thread of every live process in a process group (the server and its
    workers), from /proc/<pid>/task/<tid>/schedstat."""
    ran = waited = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            for task in (stat.parent / "task").glob("*/schedstat"):
                on_cpu, in_queue, _ = task.read_text().split()
                ran, waited = ran + int(on_cpu), waited + int(in_queue)
        except OSError:  # the process ended meanwhile
            continue
    return ran / 1e9, waited / 1e9


class Served:
    """`resontinex serve --workers N`, started in its own process group; :meth:`ready` waits
    until every worker answers."""

    def __init__(self, workers: int, state_dir: Path, model_dir: Path, env: dict[str, str]) -> None:
        self.workers = workers
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = (state_dir.parent / f"{state_dir.name}.log").open("w")
        self.proc = subprocess.Popen(
            [
                CLI,
                "serve",
                "--port",
                self.url.rsplit(":", 1)[1],
                "--state-dir",
                str(state_dir),
                "--model-dir",
                str(model_dir),
                "--workers",
                str(workers),
                "--log-level",
                "WARNING",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )

    def ready(self, timeout: float = 900) -> None:
        deadline = time.monotonic() + timeout
        answered = 0
        while answered < 40:  # new connections land on any worker: many answers in a row
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"serve did not start: {Path(self.log.name).read_text()[-2000:]}"
                )
            try:
                ok = httpx.get(f"{self.url}/health/ready", timeout=5).status_code == 200
            except httpx.HTTPError:
                ok = False
            answered = answered + 1 if ok else 0
            time.sleep(0.05 if ok else 0.5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=120)
        self.log.close()


def pg_transactions(url: str | None) -> float:
    """Committed + rolled-back transactions of the database so far (0 without PostgreSQL)."""
    if url is None:
        return 0.0
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        row = db.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database "
            "WHERE datname = current_database()"
        ).fetchone()
    return float(row[0]) if row else 0.0


def measure(served: Served, seconds: int, use_wrk: bool, db_url: str | None) -> dict[str, float]:
    """One load window: requests/s, p99, and the CPU per request of the server and of wrk."""
    transactions = pg_transactions(db_url)
    ran, waited = group_sched_seconds(served.proc.pid)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = resource.getrusage(resource.RUSAGE_SELF)
    began = time.monotonic()
    if use_wrk:
        result = wrk_load(served.url, "/trust/evaluate", SIGNALS, seconds, CONNECTIONS)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        loader = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    else:
        total = 400 * seconds
        result = asyncio.run(load(served.url, "/trust/evaluate", SIGNALS, total, CONNECTIONS))
        result["requests"] = float(total)
        after = resource.getrusage(resource.RUSAGE_SELF)
        loader = (after.ru_utime + after.ru_stime) - (own.ru_utime + own.ru_stime)
    wall = time.monotonic() - began
    ran_after, waited_after = group_sched_seconds(served.proc.pid)
    server, queued = ran_after - ran, waited_after - waited
    requests = max(result["requests"], 1.0)
    # the probe of pg_stat_database is itself one transaction
    result["db_tx_per_request"] = (pg_transactions(db_url) - transactions - 1) / requests
    result["server_cpu_ms"] = 1000 * server / requests
    result["loader_cpu_ms"] = 1000 * loader / requests
    result["cpu_share"] = (server + loader) / (wall * (os.cpu_count() or 1))
    result["queue_share"] = queued / max(server + queued, 1e-9)
    return result


def run_backend(
    backend: str,
    db_url: str | None,
    counts: tuple[int, ...],
    rounds: int,
    seconds: int,
    use_wrk: bool,
    env: dict[str, str],
    tmp: Path,
    model_dir: Path,
) -> dict[int, dict[str, float]]:
    """Every configuration serving at once; the load visits them in turn, ``rounds`` times;
    per configuration the median of each number over the rounds."""
    if db_url:
        env = {**env, "RESONTINEX_DATABASE_URL": db_url}
    servers = {n: Served(n, tmp / f"{backend}-{n}", model_dir, env) for n in counts}
    try:
        for served in servers.values():
            served.ready()
        for served in servers.values():  # warm-up: every worker has answered
            if use_wrk:
                wrk_load(served.url, "/trust/evaluate", SIGNALS, 2, CONNECTIONS)
            else:
                asyncio.run(load(served.url, "/trust/evaluate", SIGNALS, 400, CONNECTIONS))
        runs: dict[int, list[dict[str, float]]] = {n: [] for n in counts}
        for _ in range(rounds):
            for n, served in servers.items():
                runs[n].append(measure(served, seconds, use_wrk, db_url))
    finally:
        for served in servers.values():
            served.stop()
    return {
        n: {
            key: (
                sum(r[key] for r in results)
                if key == "non_200"
                else statistics.median(r[key] for r in results)
            )
            for key in results[0]
        }
        for n, results in runs.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    counts = (1, 2) if args.quick else (1, 2, 4)
    seconds, rounds = (2, 1) if args.quick else (8, 3)
    use_wrk = shutil.which("wrk") is not None
    model_dir = build_tiny_model(CACHE / "models" / "seed0", MODEL_SPEC)
    load_before = os.getloadavg()[0]

    results: dict[str, dict[int, dict[str, float]]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        key = Path(tmp) / "signing-key.pem"
        generate_key(key)  # one key for every server, as replicas on one database need
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HBT_SIGNING_KEY_PATH": str(key)}
        env.pop("RESONTINEX_DATABASE_URL", None)
        backends: dict[str, str | None] = {"SQLite": None}
        try:
            cluster = stack.enter_context(postgres_cluster())
            backends["PostgreSQL"] = cluster.create_database("bench_workers")
        except Exception as exc:  # PostgreSQL or psycopg not installed: SQLite only, said so
            print(f"PostgreSQL not measured: {type(exc).__name__}: {exc}\n")
        for backend, url in backends.items():
            results[backend] = run_backend(
                backend, url, counts, rounds, seconds, use_wrk, env, Path(tmp), model_dir
            )

    loader = (
        f"wrk -t1 -c{CONNECTIONS} -d{seconds}s"
        if use_wrk
        else f"httpx, concurrency {CONNECTIONS} (wrk not installed)"
    )
    print(
        f"`resontinex serve --workers N` on 127.0.0.1, POST /trust/evaluate, {loader}, median of "
        f"{rounds} interleaved round(s); {os.cpu_count()} CPUs shared with the load generator "
        f"and with other jobs (1-minute load average {load_before:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end). Peer: 1 worker, same backend, same run.\n"
    )
    print("| metric | ours | peer | ratio |")
    print("| --- | --- | --- | --- |")
    failures = 0

    def row(label: str, ours: float, peer: float, fmt: str = ",.0f") -> None:
        ratio = f"{ours / peer:.2f}" if peer else "-"
        print(f"| {label} | {ours:{fmt}} | {peer:{fmt}} | {ratio} |")

    for backend, by_count in results.items():
        one = by_count[1]
        failures += int(sum(r["non_200"] for r in by_count.values()))
        for n in counts[1:]:
            ours = by_count[n]
            row(f"{backend}: req/s, {n} workers vs 1", ours["rps"], one["rps"])
            row(f"{backend}: p99 ms, {n} workers vs 1", ours["p99_ms"], one["p99_ms"], ".2f")
            row(
                f"{backend}: server CPU ms per request, {n} workers vs 1",
                ours["server_cpu_ms"],
                one["server_cpu_ms"],
                ".3f",
            )
            row(
                f"{backend}: CPU share of the machine (server + load), {n} workers vs 1",
                ours["cpu_share"],
                one["cpu_share"],
                ".2f",
            )
            row(
                f"{backend}: server time runnable but waiting for a CPU, share, {n} workers vs 1",
                ours["queue_share"],
                one["queue_share"],
                ".2f",
            )
        row(
            f"{backend}: load generator CPU ms per request vs server's, 1 worker",
            one["loader_cpu_ms"],
            one["server_cpu_ms"],
            ".3f",
        )
    if "PostgreSQL" in results:
        for n in counts:
            pg, lite = results["PostgreSQL"][n], results["SQLite"][n]
            row(f"PostgreSQL vs SQLite state: req/s, {n} worker(s)", pg["rps"], lite["rps"])
            print(
                f"| PostgreSQL transactions per /trust/evaluate, {n} worker(s) | "
                f"{pg['db_tx_per_request']:.4f} | 0 | - |"
            )
    print(f"| non-200 responses, all runs | {failures} | 0 | - |")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
