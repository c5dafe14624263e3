"""Collection overhead per request: ``collect_report`` with the anthropic backend (spend cap,
report assembly, thread pool of one) vs a bare ``client.messages.create`` loop over the same
prompts, both through the real SDK against the same fake Messages API on 127.0.0.1.

A server that answers at once makes the overhead as visible as it can be (a real model answers
in hundreds of milliseconds); a second pair adds 20 ms of server latency. Rounds alternate ours
and peer; the table gives the median over rounds of the mean time per call. Goal: ratio <= 1.1.

Run: python bench_collect_overhead.py [--quick]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType

import anthropic

from fusion_ops.anthropic_backend import AnthropicBackend
from fusion_ops.collect import collect_report, parse_strategy
from fusion_ops.runtime_router import load_golden_scenarios
from fusion_ops.spend import Prices, SpendCap

MODEL = "claude-bench"
MAX_TOKENS = 256


def _fake_api() -> ModuleType:
    """The fake server the tests use (tests/ is not a package: load it by path)."""
    path = Path(__file__).resolve().parents[1] / "tests" / "fake_messages_api.py"
    spec = importlib.util.spec_from_file_location("fusion_ops_bench_fake_messages_api", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _client(url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="bench-key", base_url=url, max_retries=0)


def _ours(url: str, scenarios: list[dict[str, object]], runs: int, concurrency: int) -> float:
    """Seconds per call of a whole collection run."""
    backend = AnthropicBackend(MODEL, max_tokens=MAX_TOKENS, client=_client(url))
    spend = SpendCap(1000.0, Prices.per_mtok(1, 5), max_output_tokens=MAX_TOKENS)
    plain = parse_strategy("plain")
    start = time.perf_counter()
    report = collect_report(
        scenarios,
        baseline=plain,
        candidate=plain,
        backend=backend,
        runs=runs,
        concurrency=concurrency,
        spend=spend,
    )
    elapsed = time.perf_counter() - start
    calls = sum(len(s.baseline) + len(s.candidate) for s in report.scenarios)
    if not all(x.ok for s in report.scenarios for x in s.baseline + s.candidate):
        raise SystemExit("a benchmark call failed")
    return elapsed / calls


def _bare(url: str, prompts: list[str]) -> float:
    """Seconds per call of the same prompts, one messages.create after the other."""
    client = _client(url)
    start = time.perf_counter()
    total = 0
    for prompt in prompts:
        message = client.messages.create(
            model=MODEL, max_tokens=MAX_TOKENS, messages=[{"role": "user", "content": prompt}]
        )
        total += message.usage.input_tokens + message.usage.output_tokens
    return (time.perf_counter() - start) / len(prompts)


def _pair(
    fake: ModuleType, delay_s: float, scenarios: list[dict[str, object]], runs: int, rounds: int
) -> tuple[float, float, float]:
    """Median seconds per call: ours (concurrency 1), bare SDK, ours (concurrency 4)."""
    plain = parse_strategy("plain")
    prompts = [plain.prompt_for(s)[0] for _ in range(runs) for s in scenarios for _side in (0, 1)]
    ours, bare, wide = [], [], []
    with fake.FakeMessagesAPI(fake.Reply(delay_s=delay_s)) as api:
        _bare(api.url, prompts[:20])  # warm-up: imports, connection pool
        _ours(api.url, scenarios[:2], 1, 1)
        for r in range(rounds):
            if r % 2:
                bare.append(_bare(api.url, prompts))
                ours.append(_ours(api.url, scenarios, runs, 1))
            else:
                ours.append(_ours(api.url, scenarios, runs, 1))
                bare.append(_bare(api.url, prompts))
        wide.append(_ours(api.url, scenarios, runs, 4))
    return statistics.median(ours), statistics.median(bare), statistics.median(wide)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    fake = _fake_api()
    scenarios = load_golden_scenarios()[: 6 if args.quick else 23]
    runs, rounds = (1, 2) if args.quick else (2, 7)
    calls = len(scenarios) * runs * 2
    print(
        f"{calls} calls per run ({len(scenarios)} scenarios x {runs} runs x 2 sides), {rounds} "
        f"alternating rounds; anthropic SDK {anthropic.__version__}, Python "
        f"{sys.version.split()[0]}. Ours = collect_report + AnthropicBackend + spend cap; "
        "peer = bare messages.create loop. Goal: ratio <= 1.1."
    )
    print()
    print("| metric | ours | peer | ratio |")
    print("| --- | --- | --- | --- |")
    for delay in (0.0, 0.02):
        ours, bare, wide = _pair(fake, delay, scenarios, runs, rounds)
        label = f"server latency {delay * 1000:.0f} ms"
        print(
            f"| ms per call, {label} | {ours * 1000:.3f} | {bare * 1000:.3f} | {ours / bare:.3f} |"
        )
        print(
            f"| ms per call with --concurrency 4, {label} (peer sequential) | {wide * 1000:.3f} "
            f"| {bare * 1000:.3f} | {wide / bare:.3f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
