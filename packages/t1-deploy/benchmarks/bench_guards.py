"""Statistics of the guards on measured per-query differences of the reference system.

Contract: pass rate of the global LCB guard when the true Δ is 0 and its power at +1 pp, BCa
bootstrap (ours) vs a one-sided t-interval (peer). Monitoring: false rollbacks per simulated day of
healthy replayed traffic and windows to detect an injected −1 pp regression, CUSUM (ours) vs the
naive repeated-looks rule "window z-test rejects at 5 % for 3 consecutive windows" (peer).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from _common import context, reference_logs, row
from scipy import stats

from t1_deploy.contract import queries_for_power, simulate_operating_characteristics
from t1_deploy.monitoring import MonitoringConfig, ReplayTraffic


def t_pass_rate(diffs: np.ndarray, n: int, shift: float, sims: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    passes = 0
    for _ in range(sims):
        x = rng.choice(diffs, size=n) * rng.choice([-1.0, 1.0], size=n) + shift
        lcb = x.mean() - stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / np.sqrt(n)
        passes += lcb > 0  # the same strict rule as the global guard
    return passes / sims


def naive_rollback_window(history: list, reference: float, se: float) -> int | None:  # type: ignore[type-arg]
    run = 0
    for w in history:
        run = run + 1 if (reference - w.delta_ndcg) / se > 1.6448536 else 0
        if run >= 3:
            return int(w.window)
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    package, logs = reference_logs(args.quick)
    contract, evidence = package.build_release(logs)
    diffs = evidence.ndcg_candidate - evidence.ndcg_baseline
    sims = 40 if args.quick else 400
    n_power = queries_for_power(diffs, 0.01, 0.8)
    sizes = (n_power, len(diffs))
    oc = [
        simulate_operating_characteristics(
            diffs, n_queries=n, effect=0.01, n_simulations=sims, n_resamples=999, seed=1
        )
        for n in sizes
    ]
    t_rates = [
        (t_pass_rate(diffs, n, 0.0, sims, 2), t_pass_rate(diffs, n, 0.01, sims, 3)) for n in sizes
    ]

    from t1_deploy.monitoring import ProductionMonitoringSystem

    days = 2 if args.quick else 40
    config = MonitoringConfig(calibration_paths=500 if args.quick else 4000, queries_per_window=500)
    # Out-of-sample A/A: the limits are calibrated on one half of the test queries and the healthy
    # traffic is replayed from the other half.
    calibration, held_out = evidence.split(seed=7)
    monitor = ProductionMonitoringSystem(contract, calibration, config)
    se = monitor.se_window
    ours_false = peer_false = 0
    triggers: dict[str, int] = {}
    for d in range(days):
        run = monitor.run(
            ReplayTraffic(held_out, "healthy", seed=1000 + d),
            config.horizon_windows,
            stop_on_rollback=False,
        )
        ours_false += run.rollback is not None
        for t in run.rollback["triggers"] if run.rollback else []:
            triggers[t] = triggers.get(t, 0) + 1
        peer_false += naive_rollback_window(run.history, monitor.quality_target, se) is not None
    delays_ours, delays_peer = [], []
    runs = 5 if args.quick else 30
    for r in range(runs):
        traffic = ReplayTraffic(held_out, "quality-regression", quality_shift=0.01, seed=2000 + r)
        run = monitor.run(traffic, 300, stop_on_rollback=False)
        if run.rollback is not None:
            delays_ours.append(run.rollback["window"] + 1)
        naive = naive_rollback_window(run.history, monitor.quality_target, se)
        if naive is not None:
            delays_peer.append(naive + 1)
    print(
        context(
            f"{len(diffs)} test queries of the routed candidate vs T0 "
            f"(mean Δ {diffs.mean() * 100:+.2f} pp); {sims} sign-flip simulations per size: "
            f"n = {n_power} (normal-approximation size for 80 % power at +1 pp) and n = the "
            "test size; monitoring: "
            f"{days} simulated days × 1440 one-minute windows of "
            f"{config.queries_per_window} replayed "
            f"queries, {runs} injected −1 pp regressions"
        )
    )
    print()
    print(row("metric", "ours", "peer", "ratio"))
    print(row("---", "---", "---", "---"))
    for n, o, (t_null, t_power) in zip(sizes, oc, t_rates, strict=True):
        print(
            row(
                f"contract pass rate, true Δ = 0, n = {n} (target ≤ 5 %)",
                f"{o.pass_rate_null:.3f} (BCa)",
                f"{t_null:.3f} (t)",
                "—",
            )
        )
        print(
            row(
                f"contract power, true Δ = +1 pp, n = {n} (target ≥ 80 %)",
                f"{o.power_at_effect:.3f} (BCa)",
                f"{t_power:.3f} (t)",
                "—",
            )
        )
    print(
        row(
            "false rollback rate per day, out-of-sample A/A (target ≤ 5 %)",
            f"{ours_false / days:.3f} (CUSUM)",
            f"{peer_false / days:.3f} (naive 3×z)",
            "—",
        )
    )
    print(row("A/A rollbacks by trigger (ours)", json.dumps(triggers) or "{}", "—", "—"))
    med_o = float(np.median(delays_ours)) if delays_ours else float("nan")
    med_p = float(np.median(delays_peer)) if delays_peer else float("nan")
    print(
        row(
            "−1 pp regression detected / runs",
            f"{len(delays_ours)}/{runs}",
            f"{len(delays_peer)}/{runs}",
            "—",
        )
    )
    print(
        row(
            "median windows to rollback after −1 pp onset",
            f"{med_o:.1f}",
            f"{med_p:.1f}",
            f"{med_o / med_p:.2f}",
        )
    )


if __name__ == "__main__":
    main()
