"""Ledger admissions per second: EnergyGovernor.request() on PostgreSQL and on a SQLite file,
from 1 client and from 1, 2 and 4 processes of 8 threads sharing one ledger, in one run.

PostgreSQL, ours: the group commit (the admissions waiting in one process run as one
transaction); peer: the same store with ``group_commit=False``, one transaction per admission
(the path before the group commit). SQLite (one transaction per admission, WAL with
synchronous=FULL); peer: the in-memory governor in one process (no durability, not shareable).
Every acknowledged admission is durable (PostgreSQL: fsync on, each acknowledgement after a
synchronous commit). PostgreSQL is a throw-away cluster made with Debian's
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
    from fusion_ops.ledger_store import PostgresLedgerStore, open_ledger_store
    target, group = sys.argv[1], sys.argv[4] == "group"
    if target.startswith("postgresql://"):
        store = PostgresLedgerStore(target, group_commit=group)
    else:
        store = open_ledger_store(target)
    gov = EnergyGovernor(1e15, store=store)
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
    clients = f"{n} process{'es' if n > 1 else ''} x {threads} thread{'s' if threads > 1 else ''}"
    return f"{kind} admissions/s, {clients}"


def store_rate(
    target: str, processes: int, requests: int, threads: int, group: bool = True
) -> float:
    """Admissions per second of ``processes`` workers started together on one ledger, each
    with ``threads`` threads sharing one governor (``requests`` admissions per thread);
    ``group``: PostgreSQL's group commit on or off."""
    EnergyGovernor(1e15, store=open_ledger_store(target)).close()
    mode = "group" if group else "alone"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, target, str(requests), str(threads), mode],
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
    # (processes, threads per process): one client alone, then 8, 16 and 32 concurrent clients
    # (--quick, the CI smoke run: one client and 16)
    shapes = ((1, 1), (2, 8)) if args.quick else ((1, 1), (1, 8), (2, 8), (4, 8))
    rows: list[tuple[str, float, float]] = []
    with postgres() as cluster:
        if cluster is not None:
            for n, threads in shapes:
                ours, peer = [], []
                for r in range(repeats):  # interleaved, so drifting load hits both alike
                    for group, rates in ((True, ours), (False, peer)):
                        url = cluster.create_database(f"bench_{n}_{threads}_{r}_{int(group)}")
                        rates.append(store_rate(url, n, requests, threads, group))
                rows.append(
                    (
                        _label("PostgreSQL", n, threads) + " (peer: no group commit)",
                        statistics.median(ours),
                        statistics.median(peer),
                    )
                )
    memory = statistics.median(memory_rate(requests * 8) for _ in range(repeats))
    with tempfile.TemporaryDirectory() as tmp:
        for n, threads in shapes[1:]:
            rates = [
                store_rate(str(Path(tmp) / f"ledger-{n}-{r}.db"), n, requests, threads)
                for r in range(repeats)
            ]
            label = _label("SQLite", n, threads) + " (peer: in memory, 1 process)"
            rows.append((label, statistics.median(rates), memory))
    print(f"\n{requests} admissions per thread, median of {repeats} run(s)\n")
    print("| metric | ours | peer | ratio |")
    print("| --- | --- | --- | --- |")
    for name, ours_rate, peer_rate in rows:
        print(f"| {name} | {ours_rate:,.0f} | {peer_rate:,.0f} | {ours_rate / peer_rate:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
