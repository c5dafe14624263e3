"""Break-glass audit chain: the SQLite store (and PostgreSQL, given a URL) against the JSON-lines
``AuditLog`` it joins, in the same run.

The peer is the JSONL log a deployment would otherwise keep (flock, one fsync'ed line and an
atomically replaced head file per append). Measured: appends per second from one process and
from two processes sharing the chain (every append durable before it returns, on both sides),
the time to list live overrides in a chain of N records, and a full verification. Set
``RESONTINEX_BENCH_DATABASE_URL=postgresql://...`` (an empty database) to add PostgreSQL rows.
Usage: ``python bench_breakglass_store.py [--quick]``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from resontinex.trust import open_audit_chain

FORK = multiprocessing.get_context("fork")
PAYLOAD = {
    "operator_id": "ops_lead",
    "override_reason": "incident 42: restore the payment path",
    "original_decision": "abort",
    "trust_score": 0.147,
    "risk_tier": "block",
    "config_hash": "07be0d27e72e",
    "timestamp": "2026-12-07T02:00:00+00:00",
    "granted_decision": "execute",
    "expires_at": "2026-12-07T02:15:00+00:00",
}


def _append(target: str, count: int, live_every: int = 0) -> None:
    chain = open_audit_chain(target)
    try:
        far, past = time.time() + 3600, time.time() - 3600
        for i in range(count):
            live = live_every and i % live_every == 0
            chain.append(
                "break_glass_granted",
                {**PAYLOAD, "override_id": f"{os.getpid()}-{i}"},
                active_until=far if live else past,
            )
    finally:
        chain.close()


def appends_per_s(target: str, count: int, processes: int) -> float:
    started = time.perf_counter()
    procs = [FORK.Process(target=_append, args=(target, count)) for _ in range(processes)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"an appender failed on {target}")
    return processes * count / (time.perf_counter() - started)


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1e3)
    return statistics.median(samples)


def measure(target: str, count: int, records: int, repeats: int) -> dict[str, float]:
    out = {
        "append_1": appends_per_s(target, count, 1),
        "append_2": appends_per_s(target, count // 2, 2),
    }
    _append(target, records, live_every=max(1, records // 10))  # ten live grants among them
    chain = open_audit_chain(target, read_only=True)
    try:
        now = time.time()
        out["active"] = median_ms(lambda: chain.active(now), repeats)
        result = chain.verify()
        assert result.ok, result.problem
        out["verify"] = median_ms(chain.verify, repeats)
        out["records"] = result.records
    finally:
        chain.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke mode: small and fast")
    args = parser.parse_args()
    count, records, repeats = (10, 100, 3) if args.quick else (100, 1000, 7)
    with tempfile.TemporaryDirectory() as tmp:
        peer = measure(str(Path(tmp) / "peer.jsonl"), count, records, repeats)
        ours = {"SQLite": measure(str(Path(tmp) / "ours.sqlite"), count, records, repeats)}
        url = os.environ.get("RESONTINEX_BENCH_DATABASE_URL")
        if url:
            ours["PostgreSQL"] = measure(url, count, records, repeats)
    n = int(peer["records"])
    print(
        f"Audit chain appends ({count} per process, each durable before it returns) and reads "
        f"of a chain of {n} records with 10 live grants. Peer: the JSON-lines `AuditLog`. "
        f"Median of {repeats} reads; ratio = peer / ours for times, ours / peer for rates "
        "(> 1: ours is better)."
    )
    print()
    print("| metric | ours | peer | ratio |")
    print("| --- | --- | --- | --- |")
    for name, o in ours.items():
        for key, label in (("append_1", "1 process"), ("append_2", "2 processes")):
            ratio = o[key] / peer[key]
            print(
                f"| {name} vs JSONL: appends/s, {label} | {o[key]:.0f} | {peer[key]:.0f} "
                f"| {ratio:.2f}x |"
            )
        for key, label in (("active", "live overrides"), ("verify", "verify the chain")):
            ratio = peer[key] / o[key]
            print(
                f"| {name} vs JSONL: {label}, {n} records (ms) | {o[key]:.2f} | {peer[key]:.2f} "
                f"| {ratio:.2f}x |"
            )
    if "PostgreSQL" not in ours:
        print()
        print("PostgreSQL not measured (set RESONTINEX_BENCH_DATABASE_URL to an empty database).")


if __name__ == "__main__":
    main()
