"""cert-runtime overheads against the peers a user would otherwise pick, same process, same run.

* circuit breaker ``call`` (closed / failing / open) vs ``pybreaker``;
* JSON log formatting vs ``python-json-logger`` (ours also redacts secrets; the peer does not);
* metric lookup through ``MetricsFactory`` vs holding a prometheus-client collector directly.

Each row is the median over repeats of the mean time per operation in a batch; ours and the peer
alternate batch by batch so machine noise hits both. ratio = ours / peer (< 1: ours is faster).
Run: ``python bench_runtime.py [--quick]``; prints markdown.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version

import pybreaker
from prometheus_client import CollectorRegistry, Counter

from cert.runtime.breaker import CircuitBreaker
from cert.runtime.errors import CircuitOpenError
from cert.runtime.logging import JsonFormatter, correlation_scope
from cert.runtime.metrics import MetricsFactory

try:  # python-json-logger >= 3 moved the formatter
    from pythonjsonlogger.json import JsonFormatter as PeerJsonFormatter
except ImportError:  # pragma: no cover - older python-json-logger
    from pythonjsonlogger.jsonlogger import JsonFormatter as PeerJsonFormatter  # type: ignore


@dataclass
class Row:
    metric: str
    unit: str
    ours: float
    peer: float
    note: str = ""


def per_op_seconds(fn: Callable[[], object], batch: int) -> float:
    start = time.perf_counter()
    for _ in range(batch):
        fn()
    return (time.perf_counter() - start) / batch


def calibrate(fn: Callable[[], object], target_s: float) -> int:
    batch = 1
    while True:
        took = per_op_seconds(fn, batch) * batch
        if took >= target_s / 4 or batch >= 1 << 22:
            return max(1, int(batch * target_s / max(took, 1e-9)))
        batch *= 4


def compare(
    ours: Callable[[], object], peer: Callable[[], object], repeats: int, target_s: float
) -> tuple[float, float]:
    """Median seconds per operation for ours and the peer, batches interleaved."""
    batch = min(calibrate(ours, target_s), calibrate(peer, target_s))
    ours_t, peer_t = [], []
    for _ in range(repeats):
        ours_t.append(per_op_seconds(ours, batch))
        peer_t.append(per_op_seconds(peer, batch))
    return statistics.median(ours_t), statistics.median(peer_t)


def noop() -> int:
    return 1


def failing() -> None:
    raise ConnectionError("down")


def bench_breakers(repeats: int, target_s: float) -> list[Row]:
    rows = []
    ours = CircuitBreaker("bench", failure_threshold=10**9)
    peer = pybreaker.CircuitBreaker(fail_max=10**9, name="bench")
    o, p = compare(lambda: ours.call(noop), lambda: peer.call(noop), repeats, target_s)
    rows.append(Row("breaker call, closed, success", "µs/call", o * 1e6, p * 1e6))

    def ours_fail() -> None:
        with contextlib.suppress(ConnectionError):
            ours.call(failing)

    def peer_fail() -> None:
        with contextlib.suppress(ConnectionError):
            peer.call(failing)

    o, p = compare(ours_fail, peer_fail, repeats, target_s)
    rows.append(Row("breaker call, closed, raising", "µs/call", o * 1e6, p * 1e6))

    ours_open = CircuitBreaker("open", failure_threshold=1, recovery_timeout=1e9)
    with contextlib.suppress(ConnectionError):
        ours_open.call(failing)
    peer_open = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=1e9)
    peer_open.open()

    def ours_reject() -> None:
        with contextlib.suppress(CircuitOpenError):
            ours_open.call(noop)

    def peer_reject() -> None:
        with contextlib.suppress(pybreaker.CircuitBreakerError):
            peer_open.call(noop)

    o, p = compare(ours_reject, peer_reject, repeats, target_s)
    rows.append(Row("breaker call, open (rejected)", "µs/call", o * 1e6, p * 1e6))
    return rows


def threaded_wall_time(call: Callable[[Callable[[], object]], object], calls: int) -> float:
    """Wall time of 8 threads each making ``calls`` 1 ms I/O-bound calls through ``call``."""

    def io_call() -> None:
        time.sleep(0.001)

    def worker() -> None:
        for _ in range(calls):
            call(io_call)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def bench_breaker_concurrency(quick: bool) -> list[Row]:
    """pybreaker holds its lock for the whole protected call; ours only around bookkeeping."""
    calls, repeats = (5, 3) if quick else (25, 7)
    ours = CircuitBreaker("bench", failure_threshold=10**9)
    peer = pybreaker.CircuitBreaker(fail_max=10**9)
    ours_t, peer_t = [], []
    for _ in range(repeats):
        ours_t.append(threaded_wall_time(ours.call, calls))
        peer_t.append(threaded_wall_time(peer.call, calls))
    o, p = statistics.median(ours_t), statistics.median(peer_t)
    note = f"8 threads x {calls} calls, each a 1 ms I/O wait; wall time"
    return [Row("breaker, concurrent I/O-bound calls", "ms", o * 1e3, p * 1e3, note)]


def bench_logging(repeats: int, target_s: float) -> list[Row]:
    record = logging.LogRecord(
        "cert.trajectory",
        logging.INFO,
        __file__,
        1,
        "analysis of %s finished",
        ("prompt-17",),
        None,
    )
    record.model = "gpt2"
    record.tokens = 128
    record.perplexity = 7.25
    record.headers = {"Authorization": "Bearer abcdefghijklmnop", "Accept": "application/json"}
    ours, peer = JsonFormatter(), PeerJsonFormatter()
    with correlation_scope("bench-correlation-id"):
        o, p = compare(lambda: ours.format(record), lambda: peer.format(record), repeats, target_s)
        leaked_ours = "abcdefghijklmnop" in ours.format(record)
        leaked_peer = "abcdefghijklmnop" in peer.format(record)
    note = (
        f"bearer token in output: ours {'yes' if leaked_ours else 'no'}, "
        f"peer {'yes' if leaked_peer else 'no'}"
    )
    rows = [Row("JSON log record format (4 extras)", "µs/record", o * 1e6, p * 1e6, note)]

    # End to end through a logger and a StreamHandler into memory.
    def logger_with(formatter: logging.Formatter, name: str) -> logging.Logger:
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        handler = logging.StreamHandler(io.StringIO())
        handler.setFormatter(formatter)
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
        lg.propagate = False
        return lg

    lo, lp = (
        logger_with(JsonFormatter(), "bench.ours"),
        logger_with(PeerJsonFormatter(), "bench.peer"),
    )
    extra = {"model": "gpt2", "tokens": 128}
    o, p = compare(
        lambda: lo.info("step %d", 3, extra=extra),
        lambda: lp.info("step %d", 3, extra=extra),
        repeats,
        target_s,
    )
    rows.append(Row("logger.info end to end (2 extras)", "µs/call", o * 1e6, p * 1e6))
    return rows


def bench_metrics(repeats: int, target_s: float) -> list[Row]:
    factory = MetricsFactory(CollectorRegistry(), namespace="cert")
    held = Counter("direct_total", "Direct.", ["model"], registry=CollectorRegistry())
    factory.counter("lookups_total", "Lookups.", ["model"])
    o, p = compare(
        lambda: factory.counter("lookups_total", "Lookups.", ["model"]).labels(model="m").inc(),
        lambda: held.labels(model="m").inc(),
        repeats,
        target_s,
    )
    rows = [
        Row(
            "counter lookup + labels + inc",
            "µs/op",
            o * 1e6,
            p * 1e6,
            "peer holds the collector; ours looks it up by name each time",
        )
    ]
    disabled = MetricsFactory(enabled=False).counter("off_total", "Off.", ["model"])
    o, p = compare(
        lambda: disabled.labels(model="m").inc(),
        lambda: held.labels(model="m").inc(),
        repeats,
        target_s,
    )
    rows.append(Row("disabled metrics: labels + inc", "µs/op", o * 1e6, p * 1e6, "no-op vs real"))

    counter = iter(range(10**9))

    def ours_create() -> None:
        MetricsFactory(CollectorRegistry()).counter(f"c{next(counter)}_total", "New.", ["a"])

    def peer_create() -> None:
        Counter(f"c{next(counter)}_total", "New.", ["a"], registry=CollectorRegistry())

    o, p = compare(ours_create, peer_create, repeats, target_s)
    rows.append(Row("counter creation on a fresh registry", "µs/op", o * 1e6, p * 1e6))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke mode: few, short repeats")
    args = parser.parse_args()
    repeats, target_s = (5, 0.01) if args.quick else (21, 0.05)
    started = time.perf_counter()
    rows = bench_breakers(repeats, target_s) + bench_breaker_concurrency(args.quick)
    rows += bench_logging(repeats, target_s)
    rows += bench_metrics(repeats, target_s)
    print(
        f"cert-runtime {'quick' if args.quick else 'full'} run: median of {repeats} interleaved "
        f"batches of about {target_s * 1000:.0f} ms each; Python {platform.python_version()}; "
        f"peers pybreaker {version('pybreaker')}, python-json-logger "
        f"{version('python-json-logger')}, prometheus-client {version('prometheus-client')}. "
        "ratio = ours / peer (< 1: ours is faster)."
    )
    print()
    print("| metric | ours | peer | ratio | unit | note |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r.metric} | {r.ours:.3g} | {r.peer:.3g} | {r.ours / r.peer:.2f} | {r.unit} "
            f"| {r.note} |"
        )
    print()
    print(f"Total benchmark time {time.perf_counter() - started:.1f} s.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
