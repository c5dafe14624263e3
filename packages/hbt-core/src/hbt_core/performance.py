"""``CacheManager`` (O(1) LRU with TTL from insertion) and ``PerformanceOptimizer``.

Cache keys hash every input (BLAKE2b over a canonical encoding of strings, numbers, bytes and
numpy arrays, with their types and shapes), so two calls that differ in any argument never share
an entry. The optimizer profiles named operations and runs batches in a pool that is always
shut down when the call returns.
"""

from __future__ import annotations

import hashlib
import struct
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
from prometheus_client import CollectorRegistry

from cert.runtime.metrics import MetricsFactory
from hbt_core.errors import InvalidInputError, check_finite_number, check_int

T = TypeVar("T")
R = TypeVar("R")


def _feed(h: Any, value: object) -> None:
    if value is None:
        h.update(b"N")
    elif isinstance(value, bool):
        h.update(b"B1" if value else b"B0")
    elif isinstance(value, int):
        h.update(b"I" + str(value).encode() + b";")
    elif isinstance(value, float):
        h.update(b"F" + struct.pack("<d", value))
    elif isinstance(value, str):
        data = value.encode()
        h.update(b"S" + len(data).to_bytes(8, "little") + data)
    elif isinstance(value, (bytes, bytearray)):
        h.update(b"Y" + len(value).to_bytes(8, "little") + bytes(value))
    elif isinstance(value, np.ndarray):
        h.update(b"A" + str(value.dtype).encode() + str(value.shape).encode())
        h.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, (list, tuple)):
        h.update(b"L" + len(value).to_bytes(8, "little"))
        for v in value:
            _feed(h, v)
    elif isinstance(value, dict):
        h.update(b"D" + len(value).to_bytes(8, "little"))
        for k in sorted(value, key=repr):
            _feed(h, k)
            _feed(h, value[k])
    else:
        raise InvalidInputError(f"cannot hash cache key part of type {type(value).__name__}")


def cache_key(*parts: object) -> str:
    """A key over all inputs: type-tagged, length-prefixed, BLAKE2b-256."""
    h = hashlib.blake2b(digest_size=32)
    for p in parts:
        _feed(h, p)
    return h.hexdigest()


class CacheManager:
    """Thread-safe LRU cache; entries expire ``ttl`` seconds after insertion."""

    def __init__(
        self,
        max_size: int = 10_000,
        ttl: float = 3600.0,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_size = check_int("max_size", max_size, low=1, high=100_000_000)
        self.ttl = check_finite_number("ttl", ttl, low=0.0)
        self._clock = clock
        self._data: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = self.evictions = 0
        # idempotent: several caches (or facades) may share one registry
        self._metric = MetricsFactory(registry, enabled=registry is not None).counter(
            "hbt_cache_requests_total", "Cache lookups by result", ["result"]
        )

    def _count(self, result: str) -> None:
        self._metric.labels(result=result).inc()

    def get(self, key: str) -> tuple[bool, Any]:
        """(found, value); expired entries count as misses and are removed."""
        with self._lock:
            item = self._data.get(key)
            if item is not None and self._clock() - item[0] < self.ttl:
                self._data.move_to_end(key)
                self.hits += 1
                self._count("hit")
                return True, item[1]
            if item is not None:
                del self._data[key]
            self.misses += 1
            self._count("miss")
            return False, None

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._data[key] = (self._clock(), value)
            self._data.move_to_end(key)
            while len(self._data) > self.max_size:
                self._data.popitem(last=False)
                self.evictions += 1

    def get_or_compute(self, compute: Callable[[], T], *key_parts: object) -> T:
        key = cache_key(*key_parts)
        found, value = self.get(key)
        if found:
            return value
        value = compute()
        self.put(key, value)
        return value

    def __len__(self) -> int:
        return len(self._data)

    @property
    def hit_rate(self) -> float:
        n = self.hits + self.misses
        return self.hits / n if n else 0.0


class PerformanceOptimizer:
    """Profiles named operations and runs batched work on pools it always shuts down."""

    def __init__(
        self, registry: CollectorRegistry | None = None, max_samples: int = 10_000
    ) -> None:
        self.max_samples = check_int("max_samples", max_samples, low=1)
        # per operation: the latest ``max_samples`` timings (for the median) ...
        self.timings: dict[str, deque[float]] = {}
        # ... and running (count, total seconds) over every call
        self._totals: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()
        self._hist = MetricsFactory(registry, enabled=registry is not None).histogram(
            "hbt_operation_duration_seconds", "Profiled operation time", ["operation"]
        )

    @contextmanager
    def profile(self, operation: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            with self._lock:
                self.timings.setdefault(operation, deque(maxlen=self.max_samples)).append(elapsed)
                count, total = self._totals.get(operation, (0, 0.0))
                self._totals[operation] = (count + 1, total + elapsed)
            self._hist.labels(operation=operation).observe(elapsed)

    def summary(self) -> dict[str, dict[str, float]]:
        with self._lock:
            return {
                op: {
                    "count": float(self._totals[op][0]),
                    "total_s": float(self._totals[op][1]),
                    "median_s": float(np.median(ts)),  # of the latest max_samples
                }
                for op, ts in self.timings.items()
            }

    def batch_map(
        self,
        fn: Callable[[Sequence[T]], R],
        items: Sequence[T],
        batch_size: int = 32,
        max_workers: int = 2,
        processes: bool = False,
    ) -> list[R]:
        """Apply ``fn`` to consecutive batches in parallel; results in batch order."""
        check_int("batch_size", batch_size, low=1)
        check_int("max_workers", max_workers, low=1, high=256)
        batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
        pool_cls = ProcessPoolExecutor if processes else ThreadPoolExecutor
        with self.profile("batch_map"), pool_cls(max_workers=max_workers) as pool:
            return list(pool.map(fn, batches))
