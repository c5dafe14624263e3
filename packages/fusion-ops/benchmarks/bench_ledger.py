"""Ledger admissions per second: EnergyGovernor.request() on a SQLite file and on PostgreSQL,
from 1, 2 and 4 processes sharing one ledger, vs the in-memory governor (one process, the
default and the peer: what a user has without a store) in the same run.

Each admission is one durable transaction (SQLite WAL with synchronous=FULL; PostgreSQL with its
default fsync and synchronous_commit). PostgreSQL is a throw-away cluster made with Debian's
initdb/pg_ctl (the repo's tools/pg_cluster.py, loaded by path: run this from a checkout), fsync
on; without PostgreSQL, psycopg or that file, only SQLite is measured and the output says why.

Run: python bench_ledger.py [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from fusion_ops.governance import EnergyGovernor
from fusion_ops.ledger_store import open_ledger_store

_WORKER = textwrap.dedent(
    """
    import json, sys, threading, time
    from fusion_ops.governance import EnergyGovernor
    from fusion_ops.ledger_store import open_ledger_store
    gov = EnergyGovernor(1e15, store=open_ledger_store(sys.argv[1]))
    estimate = gov.estimate(1.0)

    def work():
        for _ in range(int(sys.argv[2])):
            gov.request(estimate, reviewed_by="bench")

    threads = [threading.Thread(target=work) for _ in range(int(sys.argv[3]))]
    print("ready", flush=True)
    sys.stdin.readline()
    start = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps([start, time.time()]), flush=True)
    gov.close()
    """
)


def _pg_cluster() -> ModuleType | None:
    """The repo's shared cluster helper, or None outside a checkout."""
    path = Path(__file__).resolve().parents[3] / "tools" / "pg_cluster.py"
    spec = importlib.util.spec_from_file_location("resontinex_tools_pg_cluster", path)
    if not path.is_file() or spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def memory_rate(requests: int) -> float:
    gov = EnergyGovernor(1e15)
    estimate = gov.estimate(1.0)
    start = time.perf_counter()
    for _ in range(requests):
        gov.request(estimate, reviewed_by="bench")
    return requests / (time.perf_counter() - start)


def _label(kind: str, n: int, threads: int) -> str:
    return f"{kind} admissions/s, {n} process{'es' if n > 1 else ''} x {threads} threads"


def store_rate(target: str, processes: int, requests: int, threads: int) -> float:
    """Admissions per second of ``processes`` workers started together on one ledger, each
    with ``threads`` threads sharing one governor (``requests`` admissions per thread)."""
    EnergyGovernor(1e15, store=open_ledger_store(target)).close()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, target, str(requests), str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    spans = []
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"benchmark worker exited {proc.returncode}")
        spans.append(json.loads(out))
    wall = max(end for _, end in spans) - min(start for start, _ in spans)
    return processes * threads * requests / wall


@contextlib.contextmanager
def postgres() -> Iterator[Any]:
    """A fresh running cluster (fsync on), or None with the reason printed."""
    helper = _pg_cluster()
    try:
        import psycopg  # noqa: F401
    except ImportError:
        print("PostgreSQL: psycopg is not installed (pip install 'fusion-ops[postgres]'): skipped")
        yield None
        return
    if helper is None:
        print(
            "PostgreSQL: tools/pg_cluster.py not found (run from a checkout): measured SQLite only"
        )
        yield None
        return
    if helper.find_bindir() is None:
        print("PostgreSQL is not installed (apt-get install postgresql): measured SQLite only")
        yield None
        return
    with helper.running_cluster(fsync=True) as cluster:
        yield cluster


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    requests, repeats = (25, 1) if args.quick else (250, 3)
    threads = 8
    workers = (1, 2, 4)
    peer = statistics.median(memory_rate(requests * threads) for _ in range(repeats))
    rows: list[tuple[str, list[float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in workers:
            rates = [
                store_rate(str(Path(tmp) / f"ledger-{n}-{r}.db"), n, requests, threads)
                for r in range(repeats)
            ]
            rows.append((_label("SQLite", n, threads), rates))
    with postgres() as cluster:
        if cluster is not None:
            for n in workers:
                rates = [
                    store_rate(cluster.create_database(f"bench_{n}_{r}"), n, requests, threads)
                    for r in range(repeats)
                ]
                rows.append((_label("PostgreSQL", n, threads), rates))
    print(f"\n{requests} admissions per thread, median of {repeats} run(s); peer: the in-memory")
    print("governor in one process (no durability, not shareable)\n")
    print("| metric | ours | peer | ratio |")
    print("| --- | --- | --- | --- |")
    for name, rates in rows:
        ours = statistics.median(rates)
        print(f"| {name} | {ours:,.0f} | {peer:,.0f} | {ours / peer:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
