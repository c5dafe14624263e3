"""Statistical quality of the budget gate, by simulation: A/A false-block rate and detection of a
+15% token regression at n = 10 runs per side.

Ours: the shipped analysis (stratified bootstrap, a breach counts only when the one-sided 95%
lower bound clears the threshold). Peer: the same numbers judged on the point estimate alone
(the usual "delta > threshold" gate). Thresholds 12% warn / 25% block. Two noise sources:

- offline: per-scenario pools of 30 real samples from the offline backend (routed overlays, the
  46 golden scenarios); each simulated run draws 10 per side with replacement; the regression
  multiplies the candidate's tokens by 1.15;
- lognormal: fixed prompts plus a 300-token output with log-normal run-to-run noise: 8 scenarios
  at 10% CV (the unit test's setting), and one scenario at 30% CV (a noisy single-prompt gate,
  where the conservative rule trades detection for false alarms).

Run: python bench_budget_statistics.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from fusion_ops.backends import OfflineBackend
from fusion_ops.budget_analysis import Thresholds, analyze_report
from fusion_ops.collect import parse_strategy
from fusion_ops.report import BudgetReport, Sample, ScenarioSamples
from fusion_ops.runtime_router import load_golden_scenarios

N = 10
THRESHOLDS = Thresholds(token_warn=12.0, token_block=25.0)
META = {
    "created_at": "simulation",
    "model": "simulation",
    "tokenizer": "simulation",
    "runs_per_side": N,
    "baseline": {"git_sha": None, "config_hash": "0" * 64, "prompt_strategy": "sim"},
    "candidate": {"git_sha": None, "config_hash": "0" * 64, "prompt_strategy": "sim"},
}
Pool = list[np.ndarray]  # per scenario: rows of (input_tokens, output_tokens, latency_ms)


def _samples(rows: np.ndarray, factor: float) -> tuple[Sample, ...]:
    return tuple(
        Sample(True, round(i * factor), round(o * factor), float(lat)) for i, o, lat in rows
    )


def _report(pools: Pool, rng: np.random.Generator, factor: float) -> BudgetReport:
    scenarios = []
    for k, pool in enumerate(pools):
        base = pool[rng.integers(0, len(pool), N)]
        cand = pool[rng.integers(0, len(pool), N)]
        scenarios.append(
            ScenarioSamples(f"s{k}", None, _samples(base, 1.0), _samples(cand, factor))
        )
    return BudgetReport(metadata=META, scenarios=tuple(scenarios))


def offline_pools(runs: int) -> Pool:
    backend = OfflineBackend(seed=11)
    routed = parse_strategy("routed")
    pools = []
    for scenario in load_golden_scenarios():
        prompt, _ = routed.prompt_for(scenario)
        done = [backend.complete(prompt, run=r) for r in range(runs)]
        pools.append(np.array([(c.input_tokens, c.output_tokens, c.latency_ms) for c in done]))
    return pools


def lognormal_pools(scenarios: int, cv: float, rng: np.random.Generator, size: int = 2000) -> Pool:
    """Scenario k: a (300 + 100 k)-token prompt and a 300-token output with run-to-run CV ``cv``."""
    sigma = np.sqrt(np.log1p(cv**2))
    pools = []
    for k in range(scenarios):
        outputs = 300 * rng.lognormal(-(sigma**2) / 2, sigma, size)
        prompt = np.full(size, 300.0 + 100 * k)
        pools.append(np.column_stack([prompt, outputs, np.full(size, 800.0)]))
    return pools


def rates(pools: Pool, factor: float, sims: int, n_boot: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    ours = {"block": 0, "flag": 0, "above0": 0}
    peer = {"block": 0, "flag": 0, "above0": 0}
    for i in range(sims):
        result = analyze_report(_report(pools, rng, factor), THRESHOLDS, n_bootstrap=n_boot, seed=i)
        assert result.token_delta is not None, result.findings
        ours["block"] += result.status == "block"
        ours["flag"] += result.status in ("warn", "block")
        estimate = result.token_delta.estimate
        ours["above0"] += result.token_delta.low > 0
        peer["above0"] += estimate > 0
        peer["block"] += estimate > THRESHOLDS.token_block
        peer["flag"] += estimate > THRESHOLDS.token_warn
    return {f"ours_{k}": v / sims for k, v in ours.items()} | {
        f"peer_{k}": v / sims for k, v in peer.items()
    }


def _ratio(a: float, b: float) -> str:
    return "-" if b == 0 else f"{a / b:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sims, n_boot, pool_runs = (60, 300, 20) if args.quick else (400, 1000, 30)
    started = time.perf_counter()
    settings = {
        "offline backend, 46 scenarios": offline_pools(pool_runs),
        "lognormal CV 10%, 8 scenarios": lognormal_pools(8, 0.10, np.random.default_rng(4)),
        "lognormal CV 30%, 1 scenario": lognormal_pools(1, 0.30, np.random.default_rng(5)),
    }
    print(
        f"{sims} simulated gate runs per row, n = {N} runs per side, "
        f"{n_boot} bootstrap replicates, thresholds warn {THRESHOLDS.token_warn}% / "
        f"block {THRESHOLDS.token_block}%. "
        "Ours = bootstrap lower bound must clear the threshold; "
        "peer = point estimate vs threshold. "
        "Targets: A/A false-block <= 5%, +15% detection (warn or block) >= 95%."
    )
    print()
    print("| metric | ours | peer | ratio |")
    print("| --- | --- | --- | --- |")
    for label, pools in settings.items():
        aa = rates(pools, 1.0, sims, n_boot, seed=1)
        reg = rates(pools, 1.15, sims, n_boot, seed=2)
        rows = [
            ("A/A false-block rate", aa, "block"),
            ("A/A false-flag rate (warn or block)", aa, "flag"),
            ("A/A rate of delta > 0 (calibration, nominal 5% for ours)", aa, "above0"),
            ("+15% detection rate (warn or block)", reg, "flag"),
        ]
        for metric, result, key in rows:
            ours, peer = result[f"ours_{key}"], result[f"peer_{key}"]
            print(f"| {metric}, {label} | {ours:.3f} | {peer:.3f} | {_ratio(ours, peer)} |")
    print()
    print(f"_simulation wall time {time.perf_counter() - started:.1f} s_")
    return 0


if __name__ == "__main__":
    sys.exit(main())
