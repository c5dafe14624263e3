"""Calibration: our Platt and isotonic (PAV) against scikit-learn on the same held-out data.

Data: ``resontinex.trust.synthetic.miscalibrated_scores`` (a well-ranked, over-confident and
shifted source). Peers: ``IsotonicRegression(out_of_bounds="clip")`` and
``CalibratedClassifierCV(FrozenEstimator(lr), method="sigmoid")`` where ``lr`` is a
LogisticRegression whose decision function is logit(score), i.e. Platt scaling on the same
feature we use. Usage: ``python bench_calibration.py [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from resontinex.trust import CalibrationAdapter, calibration_report
from resontinex.trust.synthetic import miscalibrated_scores


def median_seconds(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def logit(scores: np.ndarray) -> np.ndarray:
    clipped = np.clip(scores, 1e-6, 1 - 1e-6)
    return np.log(clipped / (1.0 - clipped)).reshape(-1, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n, repeats = (10_000, 3) if args.quick else (100_000, 5)
    train_s, train_y = miscalibrated_scores(n, seed=101)
    test_s, test_y = miscalibrated_scores(n, seed=202)
    xs, ys, xt = np.asarray(train_s), np.asarray(train_y), np.asarray(test_s)
    raw = calibration_report(test_s, test_y)

    rows = []

    def ours(method: str, backend: str) -> tuple[float, float, dict[str, Any]]:
        adapter = CalibrationAdapter(method, backend=backend)
        # Each backend gets its natural input: lists for pure Python, arrays for numpy.
        fs, fy = (train_s, train_y) if backend == "python" else (xs, ys)
        fit_s, ok = median_seconds(lambda: adapter.fit(fs, fy), repeats)
        assert ok, adapter.fit_report
        predict_s, preds = median_seconds(lambda: adapter.predict_many(xt), repeats)
        return fit_s, predict_s, calibration_report(preds.tolist(), test_y)

    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
    iso_fit, _ = median_seconds(lambda: iso.fit(xs, ys), repeats)
    iso_pred, iso_p = median_seconds(lambda: iso.predict(xt), repeats)
    iso_rep = calibration_report(iso_p.tolist(), test_y)

    lr = LogisticRegression()
    lr.coef_, lr.intercept_, lr.classes_ = np.ones((1, 1)), np.zeros(1), np.asarray([0, 1])
    cal = CalibratedClassifierCV(FrozenEstimator(lr), method="sigmoid")
    platt_fit, _ = median_seconds(lambda: cal.fit(logit(xs), ys), repeats)
    platt_pred, platt_p = median_seconds(lambda: cal.predict_proba(logit(xt))[:, 1], repeats)
    platt_rep = calibration_report(platt_p.tolist(), test_y)

    for method, backend, peer_name, peer_fit, peer_pred, peer_rep in (
        ("isotonic", "python", "IsotonicRegression", iso_fit, iso_pred, iso_rep),
        ("isotonic", "numpy", "IsotonicRegression", iso_fit, iso_pred, iso_rep),
        ("platt", "python", "CalibratedClassifierCV(sigmoid)", platt_fit, platt_pred, platt_rep),
        ("platt", "numpy", "CalibratedClassifierCV(sigmoid)", platt_fit, platt_pred, platt_rep),
    ):
        fit_s, pred_s, rep = ours(method, backend)
        label = f"{method} ({backend} backend) vs {peer_name}"
        rows.append(
            f"| {label}: fit time (ms) | {fit_s * 1e3:.1f} | {peer_fit * 1e3:.1f} | "
            f"{peer_fit / fit_s:.2f}x |"
        )
        rows.append(
            f"| {label}: predict time, {n:,} scores (ms) | {pred_s * 1e3:.2f} | "
            f"{peer_pred * 1e3:.2f} | {peer_pred / pred_s:.2f}x |"
        )
        if backend == "numpy":
            continue  # same model as the python backend; quality rows once per method
        for metric in ("ece", "brier", "auc"):
            rows.append(
                f"| {method}: held-out {metric.upper()} (raw {raw[metric]:.4f}) | "
                f"{rep[metric]:.4f} | {peer_rep[metric]:.4f} | "
                f"{peer_rep[metric] / rep[metric]:.2f}x |"
            )
        rows.append(
            f"| {method}: ECE cut vs raw (target ≥ 50 %) | "
            f"{1 - rep['ece'] / raw['ece']:.0%} | {1 - peer_rep['ece'] / raw['ece']:.0%} | — |"
        )

    print(
        f"Calibration on {n:,} train / {n:,} held-out scores from an over-confident source "
        f"(raw held-out ECE {raw['ece']:.4f}, Brier {raw['brier']:.4f}, AUC {raw['auc']:.4f}; "
        f"ECE with 15 equal-mass bins). Peer: scikit-learn {sklearn.__version__}. Median of "
        f"{repeats} runs; ratio = peer / ours (time: > 1 means we are faster; ECE/Brier: > 1 "
        f"means we are better calibrated).\n"
    )
    print("| metric | ours | peer | ratio |")
    print("| --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
