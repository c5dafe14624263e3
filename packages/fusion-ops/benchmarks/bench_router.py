"""route_scenario latency: the preloaded RuntimeRouter vs a naive router that re-reads and
re-parses routing.yaml and the overlay files on every call (what a stateless script does), and
golden-set agreement vs substring keyword matching (the original's "log" in "catalog" bug).

Run: python bench_router.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from fusion_ops.routing_rules import KeywordMatcher
from fusion_ops.runtime_router import RuntimeRouter, embedded_config_dir, load_golden_scenarios


class SubstringMatcher(KeywordMatcher):
    """Keyword triggers as plain substrings of the lower-cased text (no word boundaries)."""

    def match(self, text: str) -> dict[str, list[tuple[str, float]]]:
        found: dict[str, list[tuple[str, float]]] = {}
        lowered = text.lower()
        for keyword, targets in self._by_keyword.items():
            if keyword in lowered:
                for overlay, weight in targets:
                    found.setdefault(overlay, []).append((keyword, weight))
        return found


def _latencies_us(
    route: Callable[[Mapping[str, Any]], object], scenarios: list[dict[str, Any]], calls: int
) -> list[float]:
    out = []
    clock = time.perf_counter_ns
    for i in range(calls):
        scenario = scenarios[i % len(scenarios)]
        start = clock()
        route(scenario)
        out.append((clock() - start) / 1000)
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    ours_calls, naive_calls = (3000, 40) if args.quick else (60_000, 600)
    scenarios = load_golden_scenarios()
    config_dir = embedded_config_dir()
    router = RuntimeRouter(config_dir)
    _latencies_us(router.route_scenario, scenarios, 500)  # warm-up

    def naive(scenario: Mapping[str, Any]) -> object:
        return RuntimeRouter(config_dir).route_scenario(scenario)

    ours = _latencies_us(router.route_scenario, scenarios, ours_calls)
    peer = _latencies_us(naive, scenarios, naive_calls)

    substring = RuntimeRouter(config_dir)
    substring._matcher = SubstringMatcher(substring.rules.triggers)
    agree_ours = sum(router.route_scenario(s).selected_overlay == s["expected"] for s in scenarios)
    agree_sub = sum(
        substring.route_scenario(s).selected_overlay == s["expected"] for s in scenarios
    )
    sub_lat = _latencies_us(substring.route_scenario, scenarios, ours_calls)

    p50, p99 = statistics.median(ours), _pct(ours, 0.99)
    n50, n99 = statistics.median(peer), _pct(peer, 0.99)
    print(
        f"route_scenario over the {len(scenarios)} golden scenarios, {ours_calls} calls (ours) and "
        f"{naive_calls} calls (naive re-parse per call); Python {sys.version.split()[0]}. "
        "Target: ours p99 <= 100 us."
    )
    print()
    sub50 = statistics.median(sub_lat)
    reparse = "peer = re-read + re-parse per call"
    rows = [
        (f"route p50 (us), {reparse}", f"{p50:.1f}", f"{n50:.1f}", f"{n50 / p50:.0f}x"),
        (f"route p99 (us), {reparse}", f"{p99:.1f}", f"{n99:.1f}", f"{n99 / p99:.0f}x"),
        ("p99 <= 100 us target met", _yes(p99 <= 100), _yes(n99 <= 100), "-"),
        (
            "route p50 (us), peer = substring keywords",
            f"{p50:.1f}",
            f"{sub50:.1f}",
            f"{sub50 / p50:.2f}x",
        ),
        (
            "golden-set agreement, peer = substring keywords",
            f"{agree_ours}/{len(scenarios)}",
            f"{agree_sub}/{len(scenarios)}",
            f"{agree_ours / max(agree_sub, 1):.2f}",
        ),
    ]
    print("| metric | ours | peer | ratio |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        print(f"| {' | '.join(row)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
