from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from fusion_ops.config import BackoffConfig, InsightCacheConfig
from fusion_ops.errors import InvalidInputError
from fusion_ops.metrics import GovernorMetrics
from fusion_ops.recovery import (
    AdaptiveBackoff,
    InsightCache,
    normalise_request,
    should_terminate_early,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_repeated_request_reuses_the_result() -> None:
    registry = CollectorRegistry()
    cache = InsightCache(clock=Clock(), metrics=GovernorMetrics(registry))
    calls = []

    def compute() -> str:
        calls.append(1)
        return "insight"

    assert cache.get_or_compute({"q": "Why did  costs rise?"}, compute) == ("insight", False)
    assert cache.get_or_compute({"q": "why did costs rise?"}, compute) == ("insight", True)
    assert len(calls) == 1
    assert registry.get_sample_value("fusion_insight_cache_lookups_total", {"result": "hit"}) == 1


def test_entries_expire_after_the_ttl() -> None:
    clock = Clock()
    cache = InsightCache(InsightCacheConfig(ttl_seconds=10, max_entries=10), clock=clock)
    cache.put("q", 1)
    clock.now = 9.9
    assert cache.get("q") == (True, 1)
    clock.now = 10.0
    assert cache.get("q") == (False, None)
    assert len(cache) == 0


def test_lru_eviction() -> None:
    cache = InsightCache(InsightCacheConfig(ttl_seconds=100, max_entries=2), clock=Clock())
    cache.put("a", 1)
    cache.put("b", 2)
    cache.get("a")
    cache.put("c", 3)
    assert cache.get("b") == (False, None)
    assert cache.get("a") == (True, 1)


@given(st.dictionaries(st.text(max_size=5), st.text(max_size=20), max_size=5))
def test_normalisation_ignores_key_order_case_and_spacing(request: dict[str, str]) -> None:
    reordered = dict(reversed(list(request.items())))
    shouted = {k: "  " + v.upper() + " " for k, v in request.items()}
    assert normalise_request(request) == normalise_request(reordered)
    if all(v.upper().casefold() == v.casefold() for v in request.values()):
        assert normalise_request(request) == normalise_request(shouted)


@pytest.mark.parametrize("bad", [{"x": object()}, {"x": float("nan")}, "x" * 2_000_001])
def test_unsupported_requests_raise(bad: object) -> None:
    with pytest.raises((InvalidInputError, ValueError)):
        normalise_request(bad)


def test_early_termination_rules() -> None:
    assert should_terminate_early(0.9, 500, 1000).terminate
    assert not should_terminate_early(0.84, 100, 1000).terminate
    late = should_terminate_early(0.95, 700, 1000)
    assert not late.terminate
    assert "no saving" in late.reason
    with pytest.raises(InvalidInputError, match="quality"):
        should_terminate_early(1.2, 1, 1)
    with pytest.raises(InvalidInputError, match="token_budget"):
        should_terminate_early(0.9, 1, 0)


def test_adaptive_backoff_grows_and_resets() -> None:
    backoff = AdaptiveBackoff(BackoffConfig(1.0, 5.0, 0.5, 0.2))
    states = [backoff.record(True) for _ in range(4)]
    assert [s.delay_seconds for s in states] == [1.0, 2.0, 4.0, 5.0]
    assert [s.budget_scale for s in states] == [0.5, 0.25, 0.2, 0.2]
    assert backoff.record(False).delay_seconds == 0.0
    assert backoff.state.budget_scale == 1.0
    with pytest.raises(InvalidInputError):
        backoff.record(1)  # type: ignore[arg-type]
