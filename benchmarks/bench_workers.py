"""`POST /trust/evaluate` throughput of `resontinex serve` with 1, 2 and 4 worker processes, the
state in SQLite files vs one PostgreSQL database, in one run.

Each configuration is a real `resontinex serve --workers N` process (uvicorn workers, metrics in
prometheus-client's multiprocess mode) on 127.0.0.1, loaded by wrk (1 thread, 16 connections;
Debian's ``wrk``, installed by ``make bench``; without it an httpx loop, and the table says so).
The peer of N workers is 1 worker of the same backend, measured in the same run, so the ratio is
the scaling (goal: >= 1.7x at 2 workers). PostgreSQL is a throw-away cluster
(tools/pg_cluster.py, fsync on). The load generator shares the machine's cores with the
server: on a 2-core machine, 2 workers and wrk compete for 2 cores.

Run: python benchmarks/bench_workers.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from bench_service import CACHE, MODEL_SPEC, load, wrk_load

from cert.trajectory import build_tiny_model

REPO = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "resontinex")
SIGNALS = {"alignment_score": 0.7, "epistemic_risk": 0.2, "confidence_band": 0.3}


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A database on a throw-away cluster: the repo's tools/pg_cluster.py, loaded by path (run
    this from a checkout). fsync stays on: commits are as durable as in production."""
    spec = importlib.util.spec_from_file_location(
        "resontinex_tools_pg_cluster", REPO / "tools" / "pg_cluster.py"
    )
    assert spec is not None
    assert spec.loader is not None
    helper = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = helper  # its dataclasses look their module up there
    spec.loader.exec_module(helper)
    with helper.running_cluster() as cluster:
        yield cluster.create_database("bench_workers")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(
    workers: int, state_dir: Path, model_dir: Path, database_url: str | None
) -> Iterator[str]:
    """`resontinex serve --workers N`, ready; stopped (its whole process group) afterwards."""
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("RESONTINEX_DATABASE_URL", None)
    if database_url:
        env["RESONTINEX_DATABASE_URL"] = database_url
    log = (state_dir.parent / f"{state_dir.name}.log").open("w")
    proc = subprocess.Popen(
        [
            CLI,
            "serve",
            "--port",
            str(port),
            "--state-dir",
            str(state_dir),
            "--model-dir",
            str(model_dir),
            "--workers",
            str(workers),
            "--log-level",
            "WARNING",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        ready = 0
        deadline = time.monotonic() + 900
        while ready < 40:  # new connections land on any worker: many answers in a row
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not start: {Path(log.name).read_text()[-2000:]}")
            try:
                ok = httpx.get(f"{url}/health/ready", timeout=5).status_code == 200
            except httpx.HTTPError:
                ok = False
            ready = ready + 1 if ok else 0
            time.sleep(0.05 if ok else 0.5)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=120)
        log.close()


def measure(url: str, seconds: int, use_wrk: bool) -> dict[str, float]:
    if use_wrk:
        wrk_load(url, "/trust/evaluate", SIGNALS, 1)  # warm-up: every worker has answered
        return wrk_load(url, "/trust/evaluate", SIGNALS, seconds)
    asyncio.run(load(url, "/trust/evaluate", SIGNALS, 200, 16))
    return asyncio.run(load(url, "/trust/evaluate", SIGNALS, 400 * seconds, 16))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    counts = (1, 2) if args.quick else (1, 2, 4)
    seconds = 2 if args.quick else 10
    use_wrk = shutil.which("wrk") is not None
    model_dir = build_tiny_model(CACHE / "models" / "seed0", MODEL_SPEC)

    results: dict[tuple[str, int], dict[str, float]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        backends: dict[str, str | None] = {"SQLite": None}
        try:
            backends["PostgreSQL"] = stack.enter_context(postgres_database())
        except Exception as exc:  # PostgreSQL or psycopg not installed: SQLite only, said so
            print(f"PostgreSQL not measured: {type(exc).__name__}: {exc}\n")
        for backend, url in backends.items():
            for n in counts:
                state = Path(tmp) / f"{backend}-{n}"
                with serving(n, state, model_dir, url) as served:
                    results[backend, n] = measure(served, seconds, use_wrk)

    loader = (
        f"wrk -t1 -c16 -d{seconds}s" if use_wrk else "httpx, concurrency 16 (wrk not installed)"
    )
    print(
        f"`resontinex serve --workers N` on 127.0.0.1, POST /trust/evaluate, {loader}; "
        f"{os.cpu_count()} CPUs shared with the load generator. Peer: 1 worker, same backend, "
        "same run.\n"
    )
    print("| metric | ours | peer | ratio |")
    print("| --- | --- | --- | --- |")
    failures = 0
    for backend in backends:
        one = results[backend, 1]
        for n in counts:
            ours = results[backend, n]
            failures += int(ours["non_200"])
            if n == 1:
                continue
            print(
                f"| {backend}: req/s, {n} workers vs 1 | {ours['rps']:,.0f} | {one['rps']:,.0f} | "
                f"{ours['rps'] / one['rps']:.2f} |"
            )
            print(
                f"| {backend}: p99 ms, {n} workers vs 1 | {ours['p99_ms']:.2f} | "
                f"{one['p99_ms']:.2f} | {ours['p99_ms'] / one['p99_ms']:.2f} |"
            )
    if "PostgreSQL" in backends:
        for n in counts:
            pg, lite = results["PostgreSQL", n], results["SQLite", n]
            print(
                f"| PostgreSQL vs SQLite state: req/s, {n} worker(s) | {pg['rps']:,.0f} | "
                f"{lite['rps']:,.0f} | {pg['rps'] / lite['rps']:.2f} |"
            )
    print(f"| non-200 responses, all runs | {failures} | 0 | - |")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
