"""Governed-pipeline throughput with micro-batching vs the same pipeline with batching off.

Both pipelines are built by ``build_pipeline`` on the same locally trained model (the one the
integration tests use), in this process, and serve the same mixed requests (four categories,
so several overlays and four prompt lengths) at concurrency 1, 4, 8 and 16. "ours" is the default
model worker (batches of up to 16 that wait up to 20 ms for the callers not in them yet,
overlay prefixes cached); the peer is the same pipeline with ``max_batch=1``, one generation at
a time (prefix cache on as well, so the ratio is what batching adds). A third pipeline, batching off and ``prefix_cache_tokens=0``, is the pipeline
before both; its throughput is printed as a second peer. Every request's decision, answer and
perplexity must be the same in all runs (rel 1e-6), or the script exits 1. The drift watch is off,
so the numbers are the request path alone. Each level runs the three pipelines in turn, for
``--rounds`` rounds (3; quick: 1), and the tables give the medians.
Run: python benchmarks/bench_pipeline.py [--quick] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from cert.trajectory import TinyModelSpec, build_tiny_model
from resontinex.pipeline import (
    GovernedPipeline,
    PipelineRequest,
    PipelineResult,
    PipelineSettings,
    build_pipeline,
)

CACHE = Path(__file__).resolve().parents[1] / ".cache"
# The same model (recipe and directory) as the integration tests, so CI trains it once.
MODEL_SPEC = TinyModelSpec(n_positions=2048, steps=150)
PROMPTS = (
    ("Restart the payment workers after the failed deploy", "financial_operations"),
    ("Add tracing and alerts to the checkout API", "infrastructure_management"),
    ("Summarise what changed in the customer import job", "data_operations"),
    ("Rotate the service credentials that leaked", "security_operations"),
)


def requests(total: int, max_new_tokens: int) -> list[PipelineRequest]:
    return [
        PipelineRequest(p, category=c, max_new_tokens=max_new_tokens)
        for p, c in (PROMPTS[i % len(PROMPTS)] for i in range(total))
    ]


async def load(
    pipeline: GovernedPipeline, batch: list[PipelineRequest], concurrency: int
) -> tuple[dict[str, float], list[PipelineResult]]:
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def one(request: PipelineRequest) -> PipelineResult:
        async with gate:
            started = time.perf_counter()
            result = await pipeline.run(request)
            latencies.append(time.perf_counter() - started)
            return result

    began = time.perf_counter()
    results = list(await asyncio.gather(*(one(r) for r in batch)))
    wall = time.perf_counter() - began
    sizes = [r.stage("generate").output.get("batch_size", 1) for r in results]
    return {
        "rps": len(batch) / wall,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * statistics.quantiles(latencies, n=100, method="inclusive")[98],
        "batch": statistics.mean(sizes),
    }, results


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def same(a: PipelineResult, b: PipelineResult) -> bool:
    pa = a.stage("generate").output["perplexity"]
    pb = b.stage("generate").output["perplexity"]
    return a.decision == b.decision and a.answer == b.answer and math.isclose(pa, pb, rel_tol=1e-6)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--rounds", type=int, help="interleaved rounds, medians reported (default 3; quick 1)"
    )
    args = parser.parse_args()
    levels, total, new_tokens = ((1, 8), 8, 8) if args.quick else ((1, 4, 8, 16), 48, 48)
    rounds = args.rounds or (1 if args.quick else 3)

    model_dir = build_tiny_model(CACHE / "models" / "seed0", MODEL_SPEC)
    with tempfile.TemporaryDirectory() as tmp:
        pipelines: dict[str, Any] = {
            name: build_pipeline(
                PipelineSettings(
                    state_dir=Path(tmp) / name,
                    model_dir=model_dir,
                    drift=None,
                    period_budget=1e12,  # rounds x levels x requests: never the budget's verdict
                    max_batch=size,
                    prefix_cache_tokens=prefix,
                ),
                registry=CollectorRegistry(),
            )
            for name, size, prefix in (
                ("batched", 16, 32_768),
                ("unbatched", 1, 32_768),
                ("before", 1, 0),
            )
        }
        runs: dict[tuple[int, str], list[dict[str, float]]] = {}
        mismatches = 0
        batch = requests(total, new_tokens)
        for _ in range(rounds):
            for concurrency in levels:
                results = {}
                for name in pipelines:  # interleaved: a slow spell of the machine hits all three
                    run, results[name] = asyncio.run(load(pipelines[name], batch, concurrency))
                    runs.setdefault((concurrency, name), []).append(run)
                mismatches += sum(
                    not (same(a, b) and same(a, c))
                    for a, b, c in zip(*results.values(), strict=True)
                )
        ours_results = results["batched"]
        rows = [
            (c, *(median_run(runs[c, name]) for name in ("batched", "unbatched", "before")))
            for c in levels
        ]
        stage_p50 = {
            s.name: 1000 * s.latency_s for s in ours_results[len(ours_results) // 2].stages
        }
        prefix = pipelines["batched"].backend.local.prefix_cache_info() or {}
        for pipeline in pipelines.values():
            pipeline.close()

    print(
        f"Governed pipeline in process, {total} mixed requests per level (4 categories), "
        f"max_new_tokens={new_tokens}, tiny local GPT-2 (2048 positions) on CPU, median of "
        f"{rounds} interleaved round(s). ours = micro-batching (up to 16; a batch waits up to "
        "20 ms for callers not in it yet) with overlay prefix caching; peer = the "
        "same pipeline with batching off (max_batch=1); 'before' rows: peer = batching and "
        "prefix caching off (the pipeline before both). Decisions, answers and perplexities that "
        f"differ between the runs: {mismatches}.\n"
    )
    print("| metric | ours | peer | ratio |")
    print("| --- | --- | --- | --- |")
    for concurrency, ours, peer, before in rows:
        for key, label in (
            ("rps", "throughput (req/s)"),
            ("p50_ms", "p50 latency (ms)"),
            ("p99_ms", "p99 latency (ms)"),
            ("batch", "mean batch size"),
        ):
            print(
                f"| concurrency {concurrency}: {label} | {ours[key]:.2f} | {peer[key]:.2f} "
                f"| {ours[key] / peer[key]:.3g} |"
            )
        print(
            f"| concurrency {concurrency}: throughput vs before (req/s) | {ours['rps']:.2f} "
            f"| {before['rps']:.2f} | {ours['rps'] / before['rps']:.3g} |"
        )
    print(
        "\nStage latencies of one request at the highest concurrency (ms): "
        + ", ".join(f"{k} {v:.1f}" for k, v in stage_p50.items())
    )
    print(
        f"Prefix cache of ours: {prefix.get('entries', 0)} entries, "
        f"{prefix.get('reused_tokens', 0)} prompt tokens reused, "
        f"{prefix.get('computed_tokens', 0)} computed to fill it."
    )
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
