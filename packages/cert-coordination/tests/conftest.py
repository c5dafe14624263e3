"""Shared fixtures: a live FakeAnthropicServer, client factory, fake clocks."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from cert.coordination import AnthropicClientWithResilience
from cert.coordination.testing import FakeAnthropicServer

TEST_KEY = "sk-ant-test-0123456789abcdef"


@pytest.fixture
def server() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer() as fake:
        yield fake


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def make_client(
    server: FakeAnthropicServer, registry: CollectorRegistry
) -> Callable[..., AnthropicClientWithResilience]:
    """Build a client pointed at the fake server (use it inside the test's event loop)."""

    def make(**kwargs: Any) -> AnthropicClientWithResilience:
        kwargs.setdefault("api_key", TEST_KEY)
        kwargs.setdefault("base_url", server.url)
        kwargs.setdefault("requests_per_minute", 100_000)
        kwargs.setdefault("registry", registry)
        return AnthropicClientWithResilience(**kwargs)

    return make


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class VirtualTime(ManualClock):
    """Virtual time for asyncio code: ``sleep`` parks the task; ``run`` jumps to the next wake-up
    whenever every task is parked, so minutes of waiting take microseconds."""

    def __init__(self) -> None:
        super().__init__()
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), next(self._seq), future))
        await future

    async def run(self, *coros: Awaitable[Any]) -> list[Any]:
        tasks = [asyncio.ensure_future(c) for c in coros]
        while not all(t.done() for t in tasks):
            for _ in range(20):
                await asyncio.sleep(0)
            if self._sleepers and not all(t.done() for t in tasks):
                wake, _, future = heapq.heappop(self._sleepers)
                self.now = max(self.now, wake)
                future.set_result(None)
        return [t.result() for t in tasks]


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def virtual_time() -> VirtualTime:
    return VirtualTime()


@pytest.fixture
def new_virtual_time() -> Callable[[], VirtualTime]:
    """A factory, for hypothesis tests that need a fresh clock per example."""
    return VirtualTime
