"""Load on the RESONTINEX service over loopback: the trust gate vs a bare FastAPI endpoint, the
batch endpoint, and the governed pipeline.

- ``POST /trust/evaluate`` under wrk (Debian's ``wrk``, installed by ``make bench``; without it the
  script falls back to an httpx load loop and says so), against a peer: a bare FastAPI app, no
  middleware, with the same pydantic body model, returning a fixed small JSON object. Same
  uvicorn settings, same wrk settings, same run. Goal: >= 0.9x its requests/s, p99 <= 1.5x.
  A valid JSON body is answered by the service middleware's fast path; a second row sends the
  same body as ``application/vnd.api+json``, which the fast path leaves to the FastAPI route.
- ``POST /trust/evaluate/batch``: evaluations per second with 10,000-row requests (goal 200k/s).
- ``POST /pipeline/run`` at concurrency 4 (httpx), vs an echo endpoint on the same server.

Run: python benchmarks/bench_service.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
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
from resontinex.service.bodies import TrustSignals

CACHE = Path(__file__).resolve().parents[1] / ".cache"
# The same model (recipe and directory) as the integration tests, so CI trains it once.
MODEL_SPEC = TinyModelSpec(n_positions=2048, steps=150)


class Served:
    """A uvicorn server of ``app`` on a thread, at ``url``."""

    def __init__(self, app: FastAPI) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"

    def stop(self) -> None:
        """Shut down and wait: an app still closing its model worker while the interpreter
        exits can crash it (a segfault in CI's smoke run, after the table was printed)."""
        self.server.should_exit = True
        self.thread.join(timeout=120)


async def load(
    url: str,
    path: str,
    body: dict[str, Any],
    total: int,
    concurrency: int,
    *,
    content_type: str = "application/json",
) -> dict[str, float]:
    latencies: list[float] = []
    statuses: list[int] = []
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:

        async def one() -> None:
            async with gate:
                started = time.perf_counter()
                response = await client.post(
                    path, content=json.dumps(body), headers={"content-type": content_type}
                )
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


def bare_peer() -> FastAPI:
    """What a user would write by hand: the same body model, a fixed answer, nothing else."""
    peer = FastAPI()

    @peer.post("/trust/evaluate")
    async def evaluate(body: TrustSignals) -> dict[str, Any]:
        return {"decision": "execute", "trust_score": body.alignment_score}

    return peer


def wrk_load(
    url: str,
    path: str,
    body: dict[str, Any],
    seconds: int,
    connections: int = 16,
    *,
    content_type: str = "application/json",
) -> dict[str, float]:
    """wrk, 1 thread, ``connections`` connections: requests/s, requests and latency percentiles
    from --latency."""
    script = (
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(json.dumps(body))}\n"
        f'wrk.headers["Content-Type"] = "{content_type}"\n'
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script)
    done = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            lua.name,
            url + path,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    Path(lua.name).unlink()
    out = done.stdout

    def latency_ms(label: str) -> float:
        match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        if match is None:
            raise RuntimeError(f"wrk printed no {label}% latency:\n{out}")
        value, unit = float(match.group(1)), match.group(2)
        return value * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    requests = re.search(r"(\d+) requests in", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "p50_ms": latency_ms("50"),
        "p99_ms": latency_ms("99"),
        "rps": float(rps.group(1)) if rps else 0.0,
        "requests": float(requests.group(1)) if requests else 0.0,
        "5xx": 0.0,
        "non_200": float(non_2xx.group(1)) if non_2xx else 0.0,
    }


def batch_rate(url: str, requests: int) -> float:
    """Evaluations per second through /trust/evaluate/batch with 10,000-row requests."""
    rows = [[(i % 97) / 96, (i % 89) / 88, (i % 83) / 82] for i in range(10_000)]
    payload = json.dumps({"rows": rows})
    with httpx.Client(base_url=url, timeout=600) as client:
        began = time.perf_counter()
        for _ in range(requests):
            response = client.post(
                "/trust/evaluate/batch",
                content=payload,
                headers={"content-type": "application/json"},
            )
            response.raise_for_status()
        return requests * len(rows) / (time.perf_counter() - began)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    trust_n, pipe_n = (100, 8) if args.quick else (2000, 64)
    seconds, batches = (2, 3) if args.quick else (10, 20)
    use_wrk = shutil.which("wrk") is not None

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
    service = Served(app)
    url = service.url
    with httpx.Client(base_url=url, timeout=600) as client:
        while client.get("/health/ready").status_code != 200:
            time.sleep(0.5)
    startup = time.perf_counter() - started

    signals = {"alignment_score": 0.7, "epistemic_risk": 0.2, "confidence_band": 0.3}
    request = {"prompt": "Add alerts to the payment queue", "category": "infrastructure_management"}
    bare = Served(bare_peer())
    peer_url = bare.url
    # A JSON media type the middleware's fast path does not take: the FastAPI route answers.
    routed = "application/vnd.api+json"
    if use_wrk:
        ours_trust = wrk_load(url, "/trust/evaluate", signals, seconds)
        ours_routed = wrk_load(url, "/trust/evaluate", signals, seconds, content_type=routed)
        peer_trust = wrk_load(peer_url, "/trust/evaluate", signals, seconds)
    else:
        ours_trust = asyncio.run(load(url, "/trust/evaluate", signals, trust_n, 16))
        ours_routed = asyncio.run(
            load(url, "/trust/evaluate", signals, trust_n, 16, content_type=routed)
        )
        peer_trust = asyncio.run(load(peer_url, "/trust/evaluate", signals, trust_n, 16))
    bare.stop()
    evaluations_per_s = batch_rate(url, batches)
    loader = (
        f"wrk -t1 -c16 -d{seconds}s" if use_wrk else "httpx, concurrency 16 (wrk not installed)"
    )
    rows = [
        (f"POST /trust/evaluate vs bare FastAPI, {loader}", ours_trust, peer_trust),
        (f"same, ours through the FastAPI route ({routed})", ours_routed, peer_trust),
        (
            "POST /pipeline/run, concurrency 4",
            asyncio.run(load(url, "/pipeline/run", request, pipe_n, 4)),
            asyncio.run(load(url, "/bench/echo", request, pipe_n, 4)),
        ),
    ]
    service.stop()

    print(
        f"Service on 127.0.0.1 (uvicorn, 1 worker). Trust: {loader}, peer = bare FastAPI app with "
        f"the same body model. Pipeline: {pipe_n} requests at concurrency 4, peer = echo endpoint "
        f"on the same server. Startup incl. model load: {startup:.1f} s.\n"
    )
    print("| metric | ours | peer | ratio |")
    print("| --- | --- | --- | --- |")
    print(
        f"| POST /trust/evaluate/batch, 10,000 rows a request: evaluations/s | "
        f"{evaluations_per_s:,.0f} | 200,000 (goal) | {evaluations_per_s / 200_000:.3g} |"
    )
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
