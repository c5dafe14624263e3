"""Mondrian split-conformal coverage of the router's gain predictions: ours vs crepes."""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import context, fitted_router, reference_logs, row

from t1_deploy.conformal import MondrianConformal
from t1_deploy.reference.system import QueryLog
from t1_deploy.sustainment import slice_labels


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    import crepes

    _, logs = reference_logs(args.quick)
    distiller = fitted_router(logs)
    cal = QueryLog.concat([logs.validation, logs.holdback])
    test = logs.test
    pred_cal, pred_test = (
        distiller.predict(cal.features, head="gain"),
        distiller.predict(test.features, head="gain"),
    )
    s_cal, s_test = slice_labels(cal), slice_labels(test)
    start = time.perf_counter()
    ours = MondrianConformal(0.05).fit(pred_cal, cal.gain, s_cal)
    lo, hi = ours.interval(pred_test, s_test)
    t_ours = time.perf_counter() - start
    start = time.perf_counter()
    bins_cal = (s_cal == "hard_nl").astype(int)
    bins_test = (s_test == "hard_nl").astype(int)
    peer = crepes.ConformalRegressor().fit(residuals=cal.gain - pred_cal, bins=bins_cal)
    intervals = peer.predict_int(y_hat=pred_test, bins=bins_test, confidence=0.95)
    t_peer = time.perf_counter() - start
    print(
        context(
            f"router gain head; calibration = validation+holdback ({len(cal)} queries), "
            f"test = {len(test)} queries; slices hard-NL / other; target 93–97 %"
        )
    )
    print()
    print(
        row("metric", "ours (MondrianConformal)", "peer (crepes ConformalRegressor, bins)", "ratio")
    )
    print(row("---", "---", "---", "---"))
    for name in ("hard_nl", "other"):
        m = s_test == name
        c_ours = float(np.mean((test.gain[m] >= lo[m]) & (test.gain[m] <= hi[m])))
        inside = (test.gain[m] >= intervals[m, 0]) & (test.gain[m] <= intervals[m, 1])
        c_peer = float(np.mean(inside))
        label = f"coverage {name} (n_cal={int(np.sum(s_cal == name))}, n_test={int(m.sum())})"
        print(row(label, f"{c_ours:.4f}", f"{c_peer:.4f}", f"Δ {100 * (c_ours - c_peer):+.2f} pp"))
    w_ours = float(np.mean(hi - lo))
    w_peer = float(np.mean(intervals[:, 1] - intervals[:, 0]))
    print(row("mean interval width", f"{w_ours:.4f}", f"{w_peer:.4f}", f"{w_ours / w_peer:.3f}"))
    print(
        row(
            "fit + predict time (ms)",
            f"{1000 * t_ours:.2f}",
            f"{1000 * t_peer:.2f}",
            f"{t_peer / t_ours:.2f}×",
        )
    )


if __name__ == "__main__":
    main()
