"""fusion-budget: collect a budget report, analyse it, print the report schema.

    fusion-budget collect --baseline plain --candidate overlay:rollback_first --runs 10 -o r.json
    fusion-budget analyze --report-file r.json --output-format markdown
    fusion-budget schema

Exit codes: 0 ok (analysis pass/warn), 1 analysis block, 2 usage, input or any unexpected error.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from fusion_ops import budget_analysis
from fusion_ops.backends import OfflineBackend
from fusion_ops.cli_support import guarded_main
from fusion_ops.collect import collect_report, parse_strategy
from fusion_ops.report import report_schema
from fusion_ops.runtime_router import load_golden_scenarios


def _git_sha(directory: str | None) -> str | None:
    """HEAD of the git checkout holding ``directory`` (None outside git)."""
    try:
        proc = subprocess.run(
            ["git", "-C", directory or ".", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = proc.stdout.strip()
    return sha if proc.returncode == 0 and len(sha) == 40 else None


def _strategy_dir(spec: str) -> str | None:
    kind, _, arg = spec.partition(":")
    return arg if kind == "routed" and arg else None


def _collect(args: argparse.Namespace) -> int:
    baseline = parse_strategy(args.baseline)
    candidate = parse_strategy(args.candidate)
    scenarios = load_golden_scenarios(args.scenarios)
    backend = OfflineBackend(seed=args.seed)
    report = collect_report(
        scenarios,
        baseline=baseline,
        candidate=candidate,
        backend=backend,
        runs=args.runs,
        baseline_git_sha=args.baseline_git_sha or _git_sha(_strategy_dir(args.baseline)),
        candidate_git_sha=args.candidate_git_sha
        or os.environ.get("GITHUB_SHA")
        or _git_sha(_strategy_dir(args.candidate)),
    )
    document = report.to_json()
    Path(args.output).write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    samples = sum(len(s.baseline) + len(s.candidate) for s in report.scenarios)
    print(
        f"wrote {args.output}: {len(report.scenarios)} scenarios x {args.runs} runs per side "
        f"({samples} samples), backend {backend.name}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fusion-budget", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    collect = sub.add_parser(
        "collect",
        help="run scenarios N times per side against the offline backend; write a report",
        description="Strategies: plain | overlay:NAME | routed | routed:DIR (routing.yaml + "
        "micro_overlays/). The offline backend tokenizes for real and models latency.",
    )
    collect.add_argument("--baseline", default="plain", help="baseline prompt strategy")
    collect.add_argument("--candidate", default="routed", help="candidate prompt strategy")
    collect.add_argument("--scenarios", help="YAML with a 'scenarios' list (default: golden set)")
    collect.add_argument("--runs", type=int, default=5, help="runs per scenario and side")
    collect.add_argument("--seed", type=int, default=0, help="offline backend seed")
    collect.add_argument("--baseline-git-sha", help="recorded in the metadata")
    collect.add_argument("--candidate-git-sha", help="recorded in the metadata")
    collect.add_argument("-o", "--output", required=True, help="report file to write")
    analyze = sub.add_parser("analyze", help="analyse a report (same as budget_analysis)")
    budget_analysis.add_arguments(analyze)
    sub.add_parser("schema", help="print the report JSON Schema")
    return parser


@guarded_main
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "analyze":
        return budget_analysis.run(args)
    if args.command == "schema":
        print(json.dumps(report_schema(), indent=2))
        return 0
    return _collect(args)


if __name__ == "__main__":
    sys.exit(main())
