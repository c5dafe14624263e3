"""End-to-end `t1-deploy run`: wall time, peak memory, and the measured nDCG@10 of T0/T1/routing."""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import context, row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    profile = "quick" if args.quick else "default"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        size = ["--max-pairs", "1400"] if args.quick else []
        cmd = [
            sys.executable,
            "-m",
            "t1_deploy.cli",
            "run",
            "--out",
            str(out),
            "--profile",
            profile,
            "--output-format",
            "json",
            *size,
        ]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
        if proc.returncode not in (0, 1):
            print(proc.stderr[-2000:], file=sys.stderr)
            raise SystemExit(proc.returncode)
        results = json.loads(proc.stdout)
    n = results["ndcg_at_10"]
    q = results["n_queries"]
    print(
        context(
            f"`t1-deploy run --profile {profile}` in a subprocess; {q['train']}/{q['validation']}/"
            f"{q['test']}/{q['holdback']} train/val/test/holdback queries; verdict "
            f"{results['verdict']} (exit {proc.returncode}); peer column = production T0"
        )
    )
    print()
    print(row("metric", "ours", "peer", "ratio"))
    print(row("---", "---", "---", "---"))
    print(row("wall time (s)", f"{wall:.1f}", "—", "—"))
    print(row("peak RSS (MiB)", f"{peak_mib:.0f}", "—", "—"))
    for label, ours, peer in (
        ("nDCG@10 T1 (always upshift), test", n["t1"], n["t0"]),
        ("nDCG@10 distilled routing, test", n["distilled_routing"], n["t0"]),
        ("nDCG@10 hard-NL, distilled routing", n["hard_nl_distilled_routing"], n["hard_nl_t0"]),
    ):
        print(row(label, f"{ours:.4f}", f"{peer:.4f}", f"{ours / peer:.3f}"))
    lat = results["latency_ms"]
    print(
        row(
            "p95 latency routed vs T0 (ms)",
            f"{lat['routed_p95']:.3f}",
            f"{lat['t0_p95']:.3f}",
            f"{lat['routed_p95'] / lat['t0_p95']:.2f}",
        )
    )
    nr = results["no_regret"]
    print(
        row(
            "no-regret LCB distilled − teacher (pp)",
            f"{nr['lcb_pp']:+.3f}",
            f"≥ {nr['threshold_pp']}",
            "—",
        )
    )
    for g in results["contract"]["guards"]:
        print(
            row(
                f"guard {g['name']}",
                "—" if g["value"] is None else f"{g['value']:.4f}",
                f"{g['comparison']} {g['threshold']:g}",
                {"passed": "pass", "failed": "FAIL", "not_evaluated": "not evaluated"}[g["status"]],
            )
        )


if __name__ == "__main__":
    main()
