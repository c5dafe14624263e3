"""Calibration quality measures in pure Python: ECE (equal-mass bins), Brier, log loss, ROC AUC.

All take probabilities and 0/1 labels of equal length, already validated by the caller.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["brier_score", "expected_calibration_error", "log_loss", "reliability_table", "roc_auc"]

LOG_LOSS_EPSILON = 1e-6


def reliability_table(
    probs: Sequence[float], labels: Sequence[int], n_bins: int = 15
) -> list[dict[str, Any]]:
    """Equal-mass bins over sorted probabilities: count, range, mean prediction, observed rate."""
    n = len(probs)
    order = sorted(range(n), key=probs.__getitem__)
    table = []
    for b in range(n_bins):
        lo, hi = n * b // n_bins, n * (b + 1) // n_bins
        if hi <= lo:
            continue
        idx = order[lo:hi]
        count = hi - lo
        table.append(
            {
                "bin": b,
                "count": count,
                "lower": probs[idx[0]],
                "upper": probs[idx[-1]],
                "mean_predicted": math.fsum(probs[i] for i in idx) / count,
                "observed_rate": sum(labels[i] for i in idx) / count,
            }
        )
    return table


def expected_calibration_error(
    probs: Sequence[float], labels: Sequence[int], n_bins: int = 15
) -> float:
    """Σ (n_b / n) |mean prediction − observed rate| over ``n_bins`` equal-mass bins."""
    n = len(probs)
    return math.fsum(
        row["count"] / n * abs(row["mean_predicted"] - row["observed_rate"])
        for row in reliability_table(probs, labels, n_bins)
    )


def brier_score(probs: Sequence[float], labels: Sequence[int]) -> float:
    return math.fsum((p - y) ** 2 for p, y in zip(probs, labels, strict=True)) / len(probs)


def log_loss(probs: Sequence[float], labels: Sequence[int]) -> float:
    """Mean negative log-likelihood, predictions clipped to [1e-6, 1 − 1e-6]."""
    lo, hi = LOG_LOSS_EPSILON, 1.0 - LOG_LOSS_EPSILON
    total = 0.0
    for p, y in zip(probs, labels, strict=True):
        p = lo if p < lo else hi if p > hi else p
        total -= math.log(p) if y else math.log1p(-p)
    return total / len(probs)


def roc_auc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Mann-Whitney AUC; tied scores count one half. NaN when only one class is present."""
    positives = sum(labels)
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return math.nan
    order = sorted(range(len(scores)), key=scores.__getitem__)
    rank_sum, i = 0.0, 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        mid_rank = (i + j) / 2 + 1
        rank_sum += mid_rank * sum(labels[order[k]] for k in range(i, j + 1))
        i = j + 1
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)
