"""Mondrian (per-slice) split-conformal intervals for the router's gain predictions."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from t1_deploy._validate import check_array, check_number, check_same_length
from t1_deploy.errors import InvalidInputError, NotFittedError


def conformal_quantile(residuals: npt.NDArray[np.float64], alpha: float) -> float:
    """The ⌈(n+1)(1−α)⌉-th smallest residual (∞ when n is too small for that level)."""
    n = len(residuals)
    rank = math.ceil((n + 1) * (1 - alpha))
    if rank > n:
        return math.inf
    return float(np.sort(residuals)[rank - 1])


@dataclass
class SliceCoverage:
    slice: str
    n_calibration: int
    n_test: int
    half_width: float
    coverage: float
    target_low: float
    target_high: float

    @property
    def within_target(self) -> bool:
        return self.target_low <= self.coverage <= self.target_high


class MondrianConformal:
    """Absolute-residual split conformal, one quantile per slice (Mondrian taxonomy)."""

    def __init__(self, alpha: float = 0.05) -> None:
        self.alpha = check_number("alpha", alpha, low=1e-4, high=0.5)
        self.quantiles: dict[str, float] = {}
        self.n_cal: dict[str, int] = {}

    def fit(
        self, predictions: npt.ArrayLike, targets: npt.ArrayLike, slices: npt.ArrayLike
    ) -> MondrianConformal:
        pred, y = check_array("predictions", predictions), check_array("targets", targets)
        labels = np.asarray(slices, dtype=str)
        check_same_length(["predictions", "targets", "slices"], [pred, y, labels])
        residuals = np.abs(y - pred)
        for s in np.unique(labels):
            self.quantiles[str(s)] = conformal_quantile(residuals[labels == s], self.alpha)
            self.n_cal[str(s)] = int(np.sum(labels == s))
        return self

    def interval(
        self, predictions: npt.ArrayLike, slices: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        if not self.quantiles:
            raise NotFittedError("MondrianConformal.fit must run first")
        pred = check_array("predictions", predictions)
        labels = np.asarray(slices, dtype=str)
        check_same_length(["predictions", "slices"], [pred, labels])
        unknown = set(np.unique(labels)) - set(self.quantiles)
        if unknown:
            raise InvalidInputError(f"slices not seen in calibration: {sorted(unknown)}")
        half = np.array([self.quantiles[s] for s in labels])
        return pred - half, pred + half

    def coverage(
        self,
        predictions: npt.ArrayLike,
        targets: npt.ArrayLike,
        slices: npt.ArrayLike,
        target: tuple[float, float] = (0.93, 0.97),
    ) -> list[SliceCoverage]:
        y = check_array("targets", targets)
        labels = np.asarray(slices, dtype=str)
        lo, hi = self.interval(predictions, labels)
        inside = (y >= lo) & (y <= hi)
        return [
            SliceCoverage(
                str(s),
                self.n_cal[str(s)],
                int(np.sum(labels == s)),
                self.quantiles[str(s)],
                float(inside[labels == s].mean()),
                target[0],
                target[1],
            )
            for s in np.unique(labels)
        ]
