"""`t1-deploy run` and `t1-deploy monitor`: exit 0 ok/authorised, 1 blocked/rolled back, 2 error."""

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
        "run", help="build the reference system, run every component, write artifacts"
    )
    run.add_argument("--out", required=True, type=Path, help="artifact directory (created)")
    run.add_argument("--profile", choices=("default", "quick"), default="default")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument(
        "--max-pairs",
        type=int,
        default=None,
        help="override the profile's data set size (query/document pairs)",
    )
    run.add_argument("--output-format", choices=("text", "json"), default="text")
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


def _run(args: argparse.Namespace) -> int:
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
        "release contract guards:",
    ]
    for g in results["contract"]["guards"]:
        lines.append(
            f"  {'ok ' if g['passed'] else 'NO '} {g['name']}: {g['value']:.5f} "
            f"{g['comparison']} {g['threshold']:g}"
        )
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
            return _run(args) if args.command == "run" else _monitor(args)
    except (T1DeployError, OSError) as exc:
        print(f"t1-deploy: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
