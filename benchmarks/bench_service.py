"""Load on the RESONTINEX service: bounded concurrent requests over loopback, p50/p99, no 5xx.

The service runs under uvicorn on 127.0.0.1 with the offline pipeline (the tiny model is built
once into .cache/bench). The peer is a bare FastAPI endpoint on the same server that only echoes
its JSON body: the ratio is what the trust gate or the full pipeline costs over HTTP plumbing.
Run: python benchmarks/bench_service.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from cert.trajectory import TinyModelSpec, build_tiny_model
from resontinex.pipeline import DriftSettings, PipelineSettings
from resontinex.service import ServiceSettings, create_app

CACHE = Path(__file__).resolve().parents[1] / ".cache"
# The same model (recipe and directory) as the integration tests, so CI trains it once.
MODEL_SPEC = TinyModelSpec(n_positions=2048, steps=150)


def serve(app: FastAPI) -> tuple[uvicorn.Server, str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"


async def load(
    url: str, path: str, body: dict[str, Any], total: int, concurrency: int
) -> dict[str, float]:
    latencies: list[float] = []
    statuses: list[int] = []
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:

        async def one() -> None:
            async with gate:
                started = time.perf_counter()
                response = await client.post(path, json=body)
                latencies.append(time.perf_counter() - started)
                statuses.append(response.status_code)

        began = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(total)))
        wall = time.perf_counter() - began
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * cuts[98],
        "rps": total / wall,
        "5xx": sum(s >= 500 for s in statuses),
        "non_200": sum(s != 200 for s in statuses),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    trust_n, pipe_n = (100, 8) if args.quick else (2000, 64)

    settings = ServiceSettings(
        state_dir=CACHE / "bench-state",
        api_token=None,
        pipeline=PipelineSettings(
            state_dir=CACHE / "bench-state",
            model_dir=build_tiny_model(CACHE / "models" / "seed0", MODEL_SPEC),
            drift=DriftSettings(n_probes=8),
        ),
    )
    app = create_app(settings)

    @app.post("/bench/echo")
    def echo(body: dict[str, Any]) -> dict[str, Any]:
        return body

    started = time.perf_counter()
    server, url = serve(app)
    with httpx.Client(base_url=url, timeout=600) as client:
        while client.get("/health/ready").status_code != 200:
            time.sleep(0.5)
    startup = time.perf_counter() - started

    signals = {"alignment_score": 0.7, "epistemic_risk": 0.2, "confidence_band": 0.3}
    request = {"prompt": "Add alerts to the payment queue", "category": "infrastructure_management"}
    rows = [
        (
            "POST /trust/evaluate, concurrency 16",
            asyncio.run(load(url, "/trust/evaluate", signals, trust_n, 16)),
            asyncio.run(load(url, "/bench/echo", signals, trust_n, 16)),
        ),
        (
            "POST /pipeline/run, concurrency 4",
            asyncio.run(load(url, "/pipeline/run", request, pipe_n, 4)),
            asyncio.run(load(url, "/bench/echo", request, pipe_n, 4)),
        ),
    ]
    server.should_exit = True

    print(
        f"Service on 127.0.0.1 (uvicorn, 1 worker); {trust_n} trust and {pipe_n} pipeline requests; "
        f"peer = bare echo endpoint on the same server. Startup incl. model load: {startup:.1f} s.\n"
    )
    print("| metric | ours | peer | ratio |")
    print("| --- | --- | --- | --- |")
    failures = 0
    for name, ours, peer in rows:
        for key, unit in (("p50_ms", "ms"), ("p99_ms", "ms"), ("rps", "req/s")):
            print(
                f"| {name}: {key.split('_')[0]} ({unit}) | {ours[key]:.2f} | {peer[key]:.2f} | {ours[key] / peer[key]:.3g} |"
            )
        print(
            f"| {name}: 5xx / non-200 responses | {ours['5xx']:.0f} / {ours['non_200']:.0f} | {peer['5xx']:.0f} / {peer['non_200']:.0f} | - |"
        )
        failures += int(ours["non_200"])
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
