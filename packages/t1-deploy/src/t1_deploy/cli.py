"""`t1-deploy run`, `monitor` and `reference export`: exit 0 ok/authorised, 1 blocked/rolled back,
2 usage, input or any unexpected error."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from t1_deploy.errors import T1DeployError

EXIT_OK, EXIT_POLICY, EXIT_ERROR = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="t1-deploy", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        help="release contract on your TREC files (--qrels/--t0-run/--t1-run), or, without "
        "them, build the reference system, run every component and write artifacts",
    )
    run.add_argument("--out", required=True, type=Path, help="artifact directory (created)")
    byod = run.add_argument_group("your own search system (TREC formats)")
    byod.add_argument("--qrels", type=Path, help="TREC qrels: qid iter docid rel (graded)")
    byod.add_argument("--t0-run", type=Path, help="TREC run of the production ranker T0")
    byod.add_argument("--t1-run", type=Path, help="TREC run of the candidate ranker T1")
    byod.add_argument("--queries", type=Path, help="qid<TAB>text[<TAB>slices] (hard-NL slice)")
    byod.add_argument("--latency", type=Path, help="CSV qid,stage,latency_ms (repeats allowed)")
    byod.add_argument("--router-log", type=Path, help="CSV qid,upshift,propensity[,confidence]")
    byod.add_argument(
        "--t1-exact-run", type=Path, help="TREC run of T1 with exact search (Jaccard reference)"
    )
    byod.add_argument(
        "--noninferiority-margin",
        type=float,
        default=0.0,
        help="δ in nDCG@10 units: authorise when the LCB of ΔnDCG@10 > −δ (0 = superiority)",
    )
    byod.add_argument(
        "--hard-nl-margin",
        type=float,
        default=0.02,
        help="non-inferiority margin of the hard-NL slice: its LCB must be ≥ −this",
    )
    byod.add_argument("--slo-p95-ratio", type=float, default=2.0, help="p95 ≤ this × T0's p95")
    byod.add_argument("--slo-p99-ratio", type=float, default=3.0, help="p99 ≤ this × T0's p99")
    byod.add_argument("--slo-p95-ms", type=float, default=None, help="absolute p95 SLO (ms)")
    run.add_argument("--profile", choices=("default", "quick"), default="default")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument(
        "--max-pairs",
        type=int,
        default=None,
        help="override the profile's data set size (query/document pairs)",
    )
    run.add_argument("--output-format", choices=("text", "json"), default="text")
    ref = sub.add_parser("reference", help="the built-in reference search system")
    ref_sub = ref.add_subparsers(dest="reference_command", required=True)
    export = ref_sub.add_parser(
        "export", help="write the reference system's test split as TREC/CSV files for `run`"
    )
    export.add_argument("out", type=Path, help="directory (created)")
    export.add_argument("--profile", choices=("default", "quick"), default="quick")
    export.add_argument("--seed", type=int, default=0)
    export.add_argument("--epsilon", type=float, default=0.1, help="router exploration rate")
    export.add_argument("--repeats", type=int, default=3, help="latency measurements per stage")
    mon = sub.add_parser("monitor", help="replay one-minute windows through the production monitor")
    mon.add_argument("--duration", type=int, required=True, help="number of one-minute windows")
    mon.add_argument(
        "--scenario",
        default="healthy",
        choices=(
            "healthy",
            "quality-regression",
            "latency-spike",
            "ranking-collapse",
            "calibration-drift",
        ),
    )
    mon.add_argument("--profile", choices=("default", "quick"), default="quick")
    mon.add_argument("--seed", type=int, default=0)
    mon.add_argument("--out", type=Path, default=None, help="write snapshots and a PNG here")
    mon.add_argument("--output-format", choices=("text", "json"), default="text")
    return parser


def _progress_bars(stack: ExitStack, total_queries: int) -> tuple[Any, Any]:
    if not sys.stderr.isatty():
        return None, None
    from tqdm import tqdm

    steps = stack.enter_context(tqdm(total=13, desc="deployment", position=0, leave=True))
    queries = stack.enter_context(
        tqdm(total=total_queries, desc="queries", position=1, leave=False)
    )
    return steps, queries


BYOD_FLAGS = ("qrels", "t0_run", "t1_run", "queries", "latency", "router_log", "t1_exact_run")


def _run(args: argparse.Namespace) -> int:
    if any(getattr(args, f) is not None for f in BYOD_FLAGS):
        return _run_files(args)
    from t1_deploy.package import DeploymentConfig, ProductionDeploymentPackage

    config = DeploymentConfig.profile(args.profile, seed=args.seed)
    if args.max_pairs is not None:
        from dataclasses import replace

        config = replace(config, max_pairs=args.max_pairs)
    with ExitStack() as stack:
        steps, queries = _progress_bars(stack, config.max_pairs)
        done = [0]

        def on_step(name: str) -> None:
            if steps is not None:
                steps.set_postfix_str(name)
                steps.update(1)

        def on_query(_count: int) -> None:
            done[0] += 1
            if queries is not None:
                queries.update(1)

        package = ProductionDeploymentPackage(config, progress=on_step)
        results = package.run(args.out, query_progress=on_query)
    if args.output_format == "json":
        from t1_deploy.package import finite_json

        print(json.dumps(finite_json(results), indent=2))
    else:
        print(render_summary(results, args.out))
    return EXIT_OK if results["deployment_ready"] else EXIT_POLICY


def _run_files(args: argparse.Namespace) -> int:
    from t1_deploy.byod import InputFiles, evaluate_files, write_report
    from t1_deploy.contract import ProductionGuards

    missing = [
        f"--{f.replace('_', '-')}" for f in ("qrels", "t0_run", "t1_run") if not getattr(args, f)
    ]
    if missing:
        raise T1DeployError(f"evaluating your own files needs {', '.join(missing)}")
    files = InputFiles(**{f: getattr(args, f) for f in BYOD_FLAGS})
    guards = ProductionGuards(
        noninferiority_margin=args.noninferiority_margin,
        hard_nl_margin=args.hard_nl_margin,
        slo_p95_ratio=args.slo_p95_ratio,
        slo_p99_ratio=args.slo_p99_ratio,
        slo_p95_ms=args.slo_p95_ms,
        seed=args.seed,
    )
    contract, result, coverage, rows = evaluate_files(files, guards)
    report = write_report(args.out, contract, result, coverage, rows, files)
    if args.output_format == "json":
        print(json.dumps(report, indent=2))
    else:
        n = report["ndcg_at_10"]
        lines = [
            f"nDCG@10 on {coverage['evaluated_queries']} queries: T0 {n['t0']:.4f}  "
            f"T1 {n['t1']:.4f}  candidate {n['candidate']:.4f}",
            *_guard_lines(report["contract"]["guards"]),
            f"verdict: {report['verdict']}   report: {args.out / 'release_report.json'}",
        ]
        print("\n".join(lines))
    return EXIT_OK if result.authorised else EXIT_POLICY


def _guard_lines(guards: list[dict[str, Any]]) -> list[str]:
    lines = ["release contract guards:"]
    for g in guards:
        mark = {"passed": "ok ", "failed": "NO ", "not_evaluated": "-- "}[g["status"]]
        value = "not evaluated" if g["status"] == "not_evaluated" else f"{g['value']:.5f}"
        lines.append(
            f"  {mark} {g['name']}: {value} (passes if {g['comparison']} {g['threshold']:g}) "
            f"{g['detail']}"
        )
    return lines


def _reference(args: argparse.Namespace) -> int:
    from t1_deploy.package import DeploymentConfig
    from t1_deploy.reference.export import export_reference

    config = DeploymentConfig.profile(args.profile, seed=args.seed)
    summary = export_reference(args.out, config, epsilon=args.epsilon, repeats=args.repeats)
    print(
        f"wrote {summary['queries']} queries to {args.out}: qrels.txt t0.run t1.run "
        f"t1_exact.run queries.tsv latency.csv router.csv "
        f"(θ* {summary['theta_star']:.4f}, ε {summary['epsilon']:g}, "
        f"{summary['upshifted']} upshifted)"
    )
    return EXIT_OK


def render_summary(results: dict[str, Any], out: Path) -> str:
    n = results["ndcg_at_10"]
    lines = [
        f"nDCG@10 on {results['n_queries']['test']} test queries: "
        f"T0 {n['t0']:.4f}  T1 {n['t1']:.4f}  "
        f"T1-lite {n['t1_lite']:.4f}  distilled routing {n['distilled_routing']:.4f}",
        f"no-regret (distilled − teacher routing): LCB {results['no_regret']['lcb_pp']:+.3f} pp "
        f"({'pass' if results['no_regret']['passed'] else 'FAIL'})",
        "router fidelity R²: "
        + ", ".join(f"{k} {v:.4f}" for k, v in results["distillation"]["r2_holdout"].items()),
        *_guard_lines(results["contract"]["guards"]),
    ]
    lines.append(f"verdict: {results['verdict']}   artifacts: {out}")
    return "\n".join(lines)


def _monitor(args: argparse.Namespace) -> int:
    from t1_deploy.monitoring import ManualClock, ReplayTraffic
    from t1_deploy.package import DeploymentConfig, ProductionDeploymentPackage

    if args.duration < 1 or args.duration > 100_000:
        raise T1DeployError(f"--duration must be between 1 and 100000 windows, got {args.duration}")
    package = ProductionDeploymentPackage(DeploymentConfig.profile(args.profile, seed=args.seed))
    logs = package.prepare()
    package.build_release(logs)
    clock = ManualClock()
    monitor = package.start_production_monitoring(clock=clock, snapshot_dir=args.out)
    assert package.evidence is not None
    traffic = ReplayTraffic(
        package.evidence, args.scenario, quality_shift=monitor.config.quality_shift, seed=args.seed
    )
    run = monitor.run(traffic, args.duration, clock=clock)
    if args.out is not None:
        from dataclasses import asdict

        from t1_deploy._plots import monitoring_png

        monitoring_png(
            Path(args.out) / "monitoring.png", [asdict(h) for h in run.history], monitor.h
        )
    payload = {
        "scenario": run.scenario,
        "windows": run.windows,
        "alerts_by_severity": run.alerts_by_severity,
        "rollback": run.rollback,
        "cusum_limit": monitor.h,
        "last_window": None if not run.history else run.history[-1].__dict__,
    }
    if args.output_format == "json":
        from t1_deploy.package import finite_json

        print(json.dumps(finite_json(payload), indent=2))
    else:
        print(f"scenario {run.scenario}: {run.windows} one-minute windows (simulated clock)")
        for a in monitor.alerts[-5:]:
            breached = [g.name for g in a.guards if g.state == "BREACHED"]
            print(
                f"  window {a.window:4d} {a.severity:9s} breached={breached} "
                f"triggers={a.rollback_triggers}"
            )
        print(f"alerts: {run.alerts_by_severity}")
        print(
            "rollback: "
            + (
                f"at window {run.rollback['window']} by {run.rollback['triggers']}"
                if run.rollback
                else "none"
            )
        )
    return EXIT_POLICY if run.rollback else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_OK if exc.code == 0 else EXIT_ERROR
    from t1_deploy._logging import configure_cli_logging, correlated

    configure_cli_logging()
    try:
        with correlated():
            commands = {"run": _run, "monitor": _monitor, "reference": _reference}
            return commands[args.command](args)
    except (T1DeployError, OSError) as exc:
        print(f"t1-deploy: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # exit 2, never 1, on anything unexpected
        print(f"t1-deploy: unexpected error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
