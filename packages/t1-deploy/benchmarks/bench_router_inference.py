"""Distilled INT8 router (pure Python) vs LightGBM Booster.predict(num_threads=1), one row."""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from _common import context, fitted_router, reference_logs, row

from t1_deploy.router import Int8RouterPolicy


def _time_calls(fn, rows, repeats: int) -> list[float]:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        for features in rows:
            start = time.perf_counter_ns()
            fn(features)
            times.append((time.perf_counter_ns() - start) / 1000.0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    _, logs = reference_logs(args.quick)
    distiller = fitted_router(logs)
    distiller.routing_threshold = 0.2
    policy = Int8RouterPolicy(distiller.to_payload())
    booster = distiller.teachers["tau"]
    rows = logs.test.features[: 200 if args.quick else 1000]
    py_rows = [tuple(r) for r in rows.tolist()]
    np_rows = [r[None, :] for r in rows]
    repeats = 2 if args.quick else 5
    # warm both paths once
    policy.score(py_rows[0])
    booster.predict(np_rows[0], num_threads=1)
    ours = _time_calls(policy.score, py_rows, repeats)
    peer = _time_calls(lambda r: booster.predict(r, num_threads=1), np_rows, repeats)
    agree = np.max(np.abs(policy.score_batch(rows) - booster.predict(rows, num_threads=1)))
    p50o, p50p = statistics.median(ours), statistics.median(peer)
    p99o, p99p = float(np.percentile(ours, 99)), float(np.percentile(peer, 99))
    print(
        context(
            f"τ head, {len(py_rows)} test rows × {repeats} repeats, one row per call; "
            f"max |INT8 − teacher| on those rows = {agree:.2e}; teacher "
            f"{booster.num_trees()} trees"
        )
    )
    print()
    print(
        row(
            "metric",
            "ours (INT8 tables, pure Python)",
            "peer (LightGBM Booster.predict)",
            "ratio (peer/ours)",
        )
    )
    print(row("---", "---", "---", "---"))
    print(row("single-row latency p50 (µs)", f"{p50o:.2f}", f"{p50p:.2f}", f"{p50p / p50o:.1f}×"))
    print(row("single-row latency p99 (µs)", f"{p99o:.2f}", f"{p99p:.2f}", f"{p99p / p99o:.1f}×"))


if __name__ == "__main__":
    main()
