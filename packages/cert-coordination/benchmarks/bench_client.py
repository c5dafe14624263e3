"""Benchmarks of cert-coordination against the fake Messages API with injected latency.

1. client overhead per request: AnthropicClientWithResilience.complete vs a bare
   ``AsyncAnthropic.messages.create`` to the same fake server (no injected latency);
2. parallel strategy: wall time of ``run_strategy("parallel")`` vs the same N+1 calls made one after
   another with the bare SDK (the sum of the agents' latencies);
3. baseline cache: HTTP requests of a repeated measurement workload with the SQLite cache vs
   without it (a fresh cache per measurement).

Run: ``python bench_client.py [--quick]``; prints markdown.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import anthropic

from cert.coordination import (
    AnthropicClientWithResilience,
    BaselineMeasurer,
    ChatMessage,
    CoordinationOrchestrator,
    QualityEvaluator,
)
from cert.coordination.demo import ScriptedDemoResponder
from cert.coordination.testing import FakeAnthropicServer

KEY = "sk-ant-bench-not-a-secret"
MESSAGE = [ChatMessage("user", "Summarise the benefits of circuit breakers in one sentence.")]


async def overhead(url: str, n: int) -> tuple[float, float]:
    bare = anthropic.AsyncAnthropic(api_key=KEY, base_url=url, max_retries=2)
    ours = AnthropicClientWithResilience(KEY, base_url=url, requests_per_minute=10**6)
    bare_t, ours_t = [], []
    payload = {"role": "user", "content": MESSAGE[0].content}
    for _ in range(5):  # warm both connection pools
        await bare.messages.create(model="claude-sonnet-5", max_tokens=64, messages=[payload])
        await ours.complete(MESSAGE, max_tokens=64)
    for _ in range(n):
        start = time.perf_counter()
        await bare.messages.create(model="claude-sonnet-5", max_tokens=64, messages=[payload])
        bare_t.append(time.perf_counter() - start)
        start = time.perf_counter()
        await ours.complete(MESSAGE, max_tokens=64)
        ours_t.append(time.perf_counter() - start)
    await bare.close()
    await ours.aclose()
    return statistics.median(ours_t), statistics.median(bare_t)


async def parallel_vs_serial(url: str, agents: int, reps: int) -> tuple[float, float]:
    walls, serials = [], []
    bare = anthropic.AsyncAnthropic(api_key=KEY, base_url=url, max_retries=2)
    async with AnthropicClientWithResilience(KEY, base_url=url, requests_per_minute=10**6) as c:
        with tempfile.TemporaryDirectory() as tmp:
            evaluator = QualityEvaluator(c)
            measurer = BaselineMeasurer(c, evaluator, cache_path=Path(tmp) / "b.db")
            orchestrator = CoordinationOrchestrator(
                client=c, baseline_measurer=measurer, evaluator=evaluator
            )
            for _ in range(reps):
                start = time.perf_counter()
                await orchestrator.run_strategy("Explain circuit breakers.", agents, "parallel")
                walls.append(time.perf_counter() - start)
                start = time.perf_counter()
                for _ in range(agents + 1):
                    await bare.messages.create(
                        model="claude-sonnet-5",
                        max_tokens=256,
                        messages=[{"role": "user", "content": "Task:\nExplain circuit breakers."}],
                    )
                serials.append(time.perf_counter() - start)
    await bare.close()
    return statistics.median(walls), statistics.median(serials)


async def cache_workload(url: str, tasks: int, rounds: int, cached: bool, tmp: Path) -> None:
    strategies = ("sequential", "parallel", "debate")
    async with AnthropicClientWithResilience(KEY, base_url=url, requests_per_minute=10**6) as c:
        evaluator = QualityEvaluator(c)
        shared = BaselineMeasurer(c, evaluator, cache_path=tmp / "shared.db")
        count = 0
        for _ in range(rounds):
            for t in range(tasks):
                for strategy in strategies:
                    count += 1
                    measurer = (
                        shared
                        if cached
                        else BaselineMeasurer(c, evaluator, cache_path=tmp / f"fresh-{count}.db")
                    )
                    orchestrator = CoordinationOrchestrator(
                        client=c, baseline_measurer=measurer, evaluator=evaluator
                    )
                    await orchestrator.measure_coordination(
                        f"Task {t}: explain how a circuit breaker protects a flaky API call.",
                        num_agents=3,
                        strategy=strategy,  # type: ignore[arg-type]
                    )


def requests_of(tasks: int, rounds: int, cached: bool) -> int:
    with (
        FakeAnthropicServer(responder=ScriptedDemoResponder(seed=11)) as fake,
        tempfile.TemporaryDirectory() as tmp,
    ):
        asyncio.run(cache_workload(fake.url, tasks, rounds, cached, Path(tmp)))
        return len(fake.requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke mode: small sizes")
    args = parser.parse_args()
    n_overhead = 40 if args.quick else 300
    latency = 0.1 if args.quick else 0.25
    agents, reps = 4, (2 if args.quick else 7)
    tasks, rounds = (1, 2) if args.quick else (3, 3)

    with FakeAnthropicServer(responder=ScriptedDemoResponder(seed=1)) as fake:
        ours_s, bare_s = asyncio.run(overhead(fake.url, n_overhead))
    with FakeAnthropicServer(responder=ScriptedDemoResponder(seed=2), latency_s=latency) as fake:
        wall, serial = asyncio.run(parallel_vs_serial(fake.url, agents, reps))
    with_cache = requests_of(tasks, rounds, cached=True)
    without_cache = requests_of(tasks, rounds, cached=False)

    print(
        f"Fake Messages API on 127.0.0.1 (real anthropic {anthropic.__version__} SDK over HTTP); "
        f"overhead: median of {n_overhead} alternating calls, no injected latency; parallel: "
        f"{agents} agents + aggregator, {latency * 1000:.0f} ms injected per request, median of "
        f"{reps}; cache: {tasks} tasks x 3 strategies x {rounds} rounds, 3 agents, 1 repeat."
    )
    print()
    print("| metric | ours | peer | ratio |")
    print("| --- | --- | --- | --- |")
    print(
        f"| median time per request, ms (ours: resilient client; peer: bare SDK call) "
        f"| {ours_s * 1000:.2f} | {bare_s * 1000:.2f} | {ours_s / bare_s:.2f} |"
    )
    print(
        f"| client overhead per request, ms (ours minus bare SDK) "
        f"| {(ours_s - bare_s) * 1000:.2f} | 0 | - |"
    )
    print(
        f"| parallel strategy wall time, s (peer: the same {agents + 1} calls one after another) "
        f"| {wall:.3f} | {serial:.3f} | {wall / serial:.2f} |"
    )
    print(
        f"| concurrency achieved (sum of agent latencies / wall time; ideal {(agents + 1) / 2:.1f})"
        f" | {serial / wall:.2f} | 1.00 | {serial / wall:.2f} |"
    )
    print(
        f"| HTTP requests for the repeated workload (peer: no baseline cache) "
        f"| {with_cache} | {without_cache} | {with_cache / without_cache:.2f} |"
    )
    print(
        f"| fraction of API calls saved by the baseline cache "
        f"| {1 - with_cache / without_cache:.1%} | 0% | - |"
    )


if __name__ == "__main__":
    main()
