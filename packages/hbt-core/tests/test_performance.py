"""CacheManager LRU/TTL semantics and keys; PerformanceOptimizer profiling and pools."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from hbt_core.errors import InvalidInputError
from hbt_core.performance import CacheManager, PerformanceOptimizer, cache_key


def test_lru_eviction_and_ttl_from_insertion() -> None:
    now = [0.0]
    reg = CollectorRegistry()
    cache = CacheManager(max_size=2, ttl=10, registry=reg, clock=lambda: now[0])
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == (True, 1)  # a is now most recent
    cache.put("c", 3)  # evicts b
    assert cache.get("b") == (False, None)
    now[0] = 9.0
    assert cache.get("a") == (True, 1)  # a read does not extend its life
    now[0] = 10.5
    assert cache.get("a") == (False, None)
    assert cache.hits == 2
    assert cache.misses == 2
    assert cache.evictions == 1
    assert cache.hit_rate == 0.5
    assert reg.get_sample_value("hbt_cache_requests_total", {"result": "hit"}) == 2


def test_keys_hash_every_input() -> None:
    a = np.zeros(4, dtype=np.uint8)
    assert cache_key("x", 1, a) == cache_key("x", 1, a.copy())
    distinct = {
        cache_key(*k)
        for k in [
            ("x", 1),
            ("x", 1.0),
            ("x", True),
            ("x1",),
            ("x", "1"),
            (a,),
            (a.astype(np.int8),),
            (a.reshape(2, 2),),
            ({"k": 1},),
            ([1, 2],),
            ((1, 2),),
            (b"x",),
        ]
    }
    assert len(distinct) == 11  # [1, 2] and (1, 2) are the same sequence by design
    with pytest.raises(InvalidInputError):
        cache_key(object())


def test_get_or_compute_calls_once() -> None:
    cache = CacheManager()
    calls = []
    for _ in range(3):
        cache.get_or_compute(lambda: calls.append(1) or 42, "k", 7)
    assert len(calls) == 1


def test_batch_map_profiles_and_shuts_down_pools() -> None:
    opt = PerformanceOptimizer(CollectorRegistry())
    before = threading.active_count()
    out = opt.batch_map(sum, list(range(100)), batch_size=7, max_workers=3)
    assert sum(out) == sum(range(100))
    assert len(out) == 15
    assert threading.active_count() == before
    with opt.profile("x"):
        pass
    assert opt.summary()["x"]["count"] == 1
    with pytest.raises(InvalidInputError):
        opt.batch_map(sum, [1], batch_size=0)
    with pytest.raises(InvalidInputError):
        CacheManager(max_size=0)
    with pytest.raises(InvalidInputError):
        CacheManager(ttl=float("nan"))


def test_json_log_records_carry_fields_and_correlation_id() -> None:
    import json
    import logging

    from hbt_core.logs import JsonFormatter, correlation_id

    token = correlation_id.set("req-7")
    try:
        record = logging.LogRecord(
            "hbt_core.x", logging.WARNING, __file__, 1, "drift %s password=hunter2", ("on",), None
        )
        record.kind = "sudden"  # what log_event(logger, level, msg, kind=...) attaches
        record.api_key = "sk-live-0123456789abcdef0123"
        record.error = "POST failed: Authorization: Bearer abcdefghijklmnop"
        out = json.loads(JsonFormatter().format(record))
    finally:
        correlation_id.reset(token)
    assert out["message"].startswith("drift on password=")
    assert out["correlation_id"] == "req-7"
    assert out["kind"] == "sudden"
    text = json.dumps(out)
    for secret in ("hunter2", "sk-live-0123456789abcdef0123", "abcdefghijklmnop"):
        assert secret not in text
