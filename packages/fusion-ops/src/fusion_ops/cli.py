"""fusion-budget: collect or ingest a budget report, analyse it, print the report schema.

    fusion-budget collect --baseline plain --candidate overlay:rollback_first --runs 10 -o r.json
    fusion-budget collect --backend anthropic --model claude-haiku-4-5 --max-spend-usd 2 \
        --price-input 1 --price-output 5 --runs 5 -o r.json
    fusion-budget ingest --baseline last-week.jsonl --candidate spans.json -o r.json
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
from decimal import Decimal
from pathlib import Path
from typing import Any

from fusion_ops import budget_analysis
from fusion_ops.backends import CompletionBackend, OfflineBackend
from fusion_ops.cli_support import guarded_main
from fusion_ops.collect import PromptStrategy, call_prompts, collect_report, parse_strategy
from fusion_ops.errors import CollectionAbortedError, InvalidInputError
from fusion_ops.ingest import DEFAULT_MAX_SAMPLES, ingest_report
from fusion_ops.loader import load_backend, parse_options
from fusion_ops.report import BudgetReport, report_schema
from fusion_ops.runtime_router import load_golden_scenarios
from fusion_ops.spend import Prices, SpendCap


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


def _backend(args: argparse.Namespace) -> CompletionBackend:
    """offline | anthropic | module:Class, from the command line."""
    if args.backend != "anthropic" and args.model:
        raise InvalidInputError("--model applies to --backend anthropic only")
    if args.backend_option and ":" not in args.backend:
        raise InvalidInputError("--backend-option applies to --backend module:Class only")
    if args.backend == "offline":
        return OfflineBackend(seed=args.seed)
    if args.backend == "anthropic":
        if not args.model:
            raise InvalidInputError("--backend anthropic needs --model")
        if args.max_spend_usd is None:
            raise InvalidInputError("--backend anthropic needs --max-spend-usd (a paid model)")
        from fusion_ops.anthropic_backend import AnthropicBackend

        return AnthropicBackend(
            args.model, max_tokens=args.max_tokens, max_retries=args.max_retries
        )
    return load_backend(args.backend, parse_options(args.backend_option or []))


def _prices(args: argparse.Namespace, needed_by: str) -> Prices:
    if args.price_input is None or args.price_output is None:
        raise InvalidInputError(
            f"{needed_by} needs --price-input and --price-output (USD per million tokens)"
        )
    return Prices.per_mtok(
        args.price_input,
        args.price_output,
        cache_write=args.price_cache_write,
        cache_read=args.price_cache_read,
    )


def _spend_cap(args: argparse.Namespace) -> SpendCap | None:
    if args.max_spend_usd is None:
        return None
    prices = _prices(args, "--max-spend-usd")
    return SpendCap(args.max_spend_usd, prices, max_output_tokens=args.max_tokens)


def _progress_bar(total: int) -> Any:
    """tqdm on a terminal; nothing in CI or when stderr is a pipe or file."""
    from tqdm import tqdm

    quiet = bool(os.environ.get("CI")) or not sys.stderr.isatty()
    return tqdm(total=total, unit="call", desc="collect", disable=quiet, file=sys.stderr)


def _write_report(path: str, report: BudgetReport) -> None:
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(json.dumps(report.to_json(), indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, target)


def _dry_run(
    args: argparse.Namespace,
    scenarios: list[dict[str, Any]],
    baseline: PromptStrategy,
    candidate: PromptStrategy,
) -> int:
    """What a run would cost: the spend cap's hard bound and an offline-tokenizer estimate."""
    prices = _prices(args, "--dry-run")
    prompts = call_prompts(scenarios, baseline=baseline, candidate=candidate, runs=args.runs)
    bound = sum((prices.worst_case(p, args.max_tokens) for p in prompts), Decimal(0))
    offline = collect_report(
        scenarios,
        baseline=baseline,
        candidate=candidate,
        backend=OfflineBackend(seed=args.seed),
        runs=args.runs,
    )
    samples = [x for s in offline.scenarios for x in s.baseline + s.candidate]
    estimate = sum((prices.cost(x) for x in samples), Decimal(0))
    tokens_in = sum(x.input_tokens or 0 for x in samples)
    tokens_out = sum(x.output_tokens or 0 for x in samples)
    print(
        f"{len(prompts)} calls ({len(scenarios)} scenarios x {args.runs} runs x 2 sides), "
        f"{sum(len(p.encode()) for p in prompts)} prompt bytes\n"
        f"spend cap needed (worst case: prompt bytes + {args.max_tokens} output tokens per call): "
        f"${bound:.4f}\n"
        f"estimate with the offline tokenizer ({tokens_in} input + {tokens_out} output tokens): "
        f"${estimate:.4f}"
    )
    return 0


def _collect(args: argparse.Namespace) -> int:
    baseline = parse_strategy(args.baseline)
    candidate = parse_strategy(args.candidate)
    scenarios = load_golden_scenarios(args.scenarios)
    if args.dry_run:
        return _dry_run(args, scenarios, baseline, candidate)
    if not args.output:
        raise InvalidInputError("collect needs -o/--output")
    backend = _backend(args)
    spend = _spend_cap(args)
    calls = len(scenarios) * args.runs * 2
    if spend is not None:
        print(f"spend cap ${spend.cap} for at most {calls} calls", file=sys.stderr)
    with _progress_bar(calls) as bar:
        try:
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
                concurrency=args.concurrency,
                spend=spend,
                progress=bar.update,
            )
        except CollectionAbortedError as exc:
            if isinstance(exc.partial, BudgetReport):  # keep what was paid for, apart
                partial = f"{args.output}.partial.json"
                _write_report(partial, exc.partial)
                print(f"partial samples kept in {partial}", file=sys.stderr)
            raise
    _write_report(args.output, report)
    samples = sum(len(s.baseline) + len(s.candidate) for s in report.scenarios)
    spent = f", spent ${spend.spent} of ${spend.cap}" if spend is not None else ""
    print(
        f"wrote {args.output}: {len(report.scenarios)} scenarios x {args.runs} runs per side "
        f"({samples} samples), backend {backend.name}{spent}"
    )
    return 0


def _ingest(args: argparse.Namespace) -> int:
    report = ingest_report(
        args.baseline,
        args.candidate,
        group_by=args.group_by,
        max_samples=args.max_samples,
    )
    _write_report(args.output, report)
    info = report.metadata["ingest"]
    print(
        f"wrote {args.output}: {len(report.scenarios)} scenarios grouped by {args.group_by!r}; "
        f"records used {info['used']}, skipped {info['skipped']}"
    )
    dropped = info["dropped_scenarios"]
    if dropped["baseline_only"] or dropped["candidate_only"]:
        print(
            f"scenarios on one side only (left out): {json.dumps(dropped)[:2000]}",
            file=sys.stderr,
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fusion-budget", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    collect = sub.add_parser(
        "collect",
        help="run scenarios N times per side against a backend; write a report",
        description="Strategies: plain | overlay:NAME | routed | routed:DIR (routing.yaml + "
        "micro_overlays/). Backends: offline (tokenizes for real, models latency), anthropic "
        "(Claude through the official SDK; needs fusion-ops[anthropic], ANTHROPIC_API_KEY, "
        "honours ANTHROPIC_BASE_URL) or module:Class (any CompletionBackend).",
    )
    collect.add_argument("--baseline", default="plain", help="baseline prompt strategy")
    collect.add_argument("--candidate", default="routed", help="candidate prompt strategy")
    collect.add_argument("--scenarios", help="YAML with a 'scenarios' list (default: golden set)")
    collect.add_argument("--runs", type=int, default=5, help="runs per scenario and side")
    collect.add_argument("--seed", type=int, default=0, help="offline backend seed")
    collect.add_argument(
        "--backend", default="offline", help="offline | anthropic | module:Class (default offline)"
    )
    collect.add_argument(
        "--backend-option",
        action="append",
        metavar="KEY=VALUE",
        help="keyword argument (a string) for a module:Class backend; repeatable",
    )
    collect.add_argument("--model", help="model id for --backend anthropic")
    collect.add_argument(
        "--max-tokens", type=int, default=1024, help="output token limit per call (default 1024)"
    )
    collect.add_argument(
        "--max-retries", type=int, default=2, help="SDK retries per call, anthropic (default 2)"
    )
    collect.add_argument(
        "--concurrency", type=int, default=1, help="calls in flight at once (default 1)"
    )
    collect.add_argument(
        "--max-spend-usd", type=float, help="spend cap of the run (required for anthropic)"
    )
    for kind in ("input", "output", "cache-write", "cache-read"):
        default = {"cache-write": " (default 1.25x input)", "cache-read": " (default 0.1x input)"}
        collect.add_argument(
            f"--price-{kind}",
            type=float,
            help=f"USD per million {kind} tokens{default.get(kind, '')}",
        )
    collect.add_argument("--baseline-git-sha", help="recorded in the metadata")
    collect.add_argument("--candidate-git-sha", help="recorded in the metadata")
    collect.add_argument(
        "--dry-run",
        action="store_true",
        help="call nothing: print the calls, the spend cap they need and an offline estimate",
    )
    collect.add_argument("-o", "--output", help="report file to write (required unless --dry-run)")
    ingest = sub.add_parser(
        "ingest",
        help="build a report from usage logs (JSONL records or OpenTelemetry GenAI spans)",
        description="Each file is JSON Lines (usage records, spans, or OTLP export requests) or "
        "one JSON document (OTLP export or an array). Records are grouped into scenarios by an "
        "attribute; scenarios seen on one side only are left out and listed.",
    )
    ingest.add_argument("--baseline", nargs="+", required=True, help="baseline log files")
    ingest.add_argument("--candidate", nargs="+", required=True, help="candidate log files")
    ingest.add_argument(
        "--group-by",
        default="gen_ai.request.model",
        help="attribute naming the scenario (default gen_ai.request.model)",
    )
    ingest.add_argument(
        "--max-samples",
        type=int,
        default=DEFAULT_MAX_SAMPLES,
        help=f"samples kept per scenario and side, a seeded uniform reservoir "
        f"(default {DEFAULT_MAX_SAMPLES})",
    )
    ingest.add_argument("-o", "--output", required=True, help="report file to write")
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
    return _ingest(args) if args.command == "ingest" else _collect(args)


if __name__ == "__main__":
    sys.exit(main())
