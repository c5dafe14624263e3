"""Memory of the budget gate's bootstrap: chunked (ours) against every replicate at once (peer).

Ours: ``analyze_report`` as shipped, replicates computed in chunks of at most ``CHUNK_ELEMENTS``
resampled runs per side. Peer: the same call with ``chunk_elements=None``, which materialises
replicates × runs at once, the way the gate worked before (a 3.6 MB report peaked at 1.3 GB
RSS). Both draw the same resamples, so their intervals must be identical; the script checks it.

Measured per method: peak memory traced by ``tracemalloc`` during the analysis (numpy reports its
buffers to it), the peak RSS of a fresh child process that loads the report and runs the
analysis (what the CI job pays), and the median wall time. The report is synthetic (log-normal
tokens and latencies) and written to JSON first, so its file size is the one the CLI would read.

Run: python bench_bootstrap_memory.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from fusion_ops.budget_analysis import CHUNK_ELEMENTS, BudgetAnalysis, analyze_report
from fusion_ops.report import BudgetReport, Sample, ScenarioSamples, load_report

META = {
    "created_at": "benchmark",
    "model": "synthetic",
    "tokenizer": "synthetic",
    "baseline": {"git_sha": None, "config_hash": "0" * 64, "prompt_strategy": "sim"},
    "candidate": {"git_sha": None, "config_hash": "0" * 64, "prompt_strategy": "sim"},
}
METHODS = {"ours": CHUNK_ELEMENTS, "peer": None}


def synthetic_report(scenarios: int, runs: int, seed: int = 0) -> BudgetReport:
    rng = np.random.default_rng(seed)

    def side(scale: float) -> tuple[Sample, ...]:
        tokens = rng.lognormal(np.log(900 * scale), 0.2, (runs, 2)).round().astype(int)
        latency = rng.lognormal(np.log(1500), 0.3, runs).round(3)
        return tuple(
            Sample(True, int(i), int(o), float(lat))
            for (i, o), lat in zip(tokens, latency, strict=True)
        )

    return BudgetReport(
        metadata={**META, "runs_per_side": runs},
        scenarios=tuple(
            ScenarioSamples(f"s{k}", None, side(1.0), side(1.05)) for k in range(scenarios)
        ),
    )


def _analyse(report: BudgetReport, method: str, n_boot: int) -> BudgetAnalysis:
    return analyze_report(report, n_bootstrap=n_boot, chunk_elements=METHODS[method])


def traced_peak(report: BudgetReport, method: str, n_boot: int) -> tuple[int, BudgetAnalysis]:
    tracemalloc.start()
    try:
        result = _analyse(report, method, n_boot)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, result


def child_rss(path: Path, method: str, n_boot: int) -> int:
    """Peak RSS (bytes) of a fresh process that loads the report file and analyses it."""
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(path), method, str(n_boot)],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(proc.stdout.strip())


def _child(path: str, method: str, n_boot: str) -> int:
    _analyse(load_report(path), method, int(n_boot))
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)  # Linux: KiB
    return 0


def _ratio(ours: float, peer: float) -> str:
    return f"{ours / peer:.3f}" if peer else "-"


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        return _child(*sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    scenarios, runs, n_boot, repeats = (10, 300, 500, 1) if args.quick else (46, 500, 2000, 3)
    report = synthetic_report(scenarios, runs)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.json"
        path.write_text(json.dumps(report.to_json()))
        size_mb = path.stat().st_size / 1e6
        rss = {m: child_rss(path, m, n_boot) for m in METHODS}
    _analyse(synthetic_report(2, 5), "ours", 100)  # warm-up: lazy imports are not the method's
    peaks, results, times = {}, {}, {}
    for method in METHODS:
        peaks[method], results[method] = traced_peak(report, method, n_boot)
        runs_s = []
        for _ in range(repeats):
            started = time.perf_counter()
            _analyse(report, method, n_boot)
            runs_s.append(time.perf_counter() - started)
        times[method] = statistics.median(runs_s)
    same = results["ours"].to_dict() == results["peer"].to_dict()
    print(
        f"Report: {scenarios} scenarios x {runs} runs per side ({size_mb:.1f} MB JSON), "
        f"{n_boot} bootstrap replicates; ours = chunks of at most {CHUNK_ELEMENTS:,} resampled "
        "runs per side, peer = every replicate at once (the previous method, minus its extra copies). "
        f"Wall time: median of {repeats}."
    )
    print()
    print("| metric | ours | peer | ratio |")
    print("| --- | --- | --- | --- |")
    mib = 2**20
    print(
        f"| peak traced memory of the analysis (MiB) | {peaks['ours'] / mib:.1f} | "
        f"{peaks['peer'] / mib:.1f} | {_ratio(peaks['ours'], peaks['peer'])} |"
    )
    print(
        f"| peak RSS of a process loading + analysing the report (MiB) | {rss['ours'] / mib:.0f} | "
        f"{rss['peer'] / mib:.0f} | {_ratio(rss['ours'], rss['peer'])} |"
    )
    print(
        f"| analysis wall time (s) | {times['ours']:.2f} | {times['peer']:.2f} | "
        f"{_ratio(times['ours'], times['peer'])} |"
    )
    print(f"| identical verdict and intervals | {'yes' if same else 'NO'} | - | - |")
    if not same:
        print("chunked and naive results differ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
