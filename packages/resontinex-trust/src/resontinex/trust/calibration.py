"""Score calibration: Platt scaling and isotonic regression (PAV), pure Python with a numpy path.

* **Platt**: p = σ(a·logit(s) + b), fitted by Newton's method with backtracking on Platt's
  smoothed targets ((N₊+1)/(N₊+2), 1/(N₋+2)), as in Lin, Lin & Weng (2007). Working on
  logit(s) makes the identity map a member of the family. A fit with a ≤ 0 is refused: it
  would reverse the order of scores and break the gate's monotonicity. σ is the gate's
  one-branch ``logistic`` (monotone in floating point, total for Platt's unbounded argument).
* **Isotonic**: pool-adjacent-violators on the distinct scores (weighted by multiplicity),
  merging until block means increase strictly. Predictions interpolate linearly between block
  centroids (mean score → mean label), so the map is strictly increasing inside the fitted
  range (AUC is kept there) and flat outside it.
* **auto**: Platt below ``isotonic_min_samples``; otherwise both are fitted on 80 % and the one
  with the lower held-out log loss (every fifth sample) is refitted on everything.

``fit`` returns False, with the reason logged and kept in ``fit_report``, for fewer than
``min_samples`` samples or a single class; invalid data raises :class:`CalibrationError`.
"""

from __future__ import annotations

import bisect
import itertools
import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from resontinex.trust.calibration_metrics import (
    brier_score,
    expected_calibration_error,
    log_loss,
    reliability_table,
    roc_auc,
)
from resontinex.trust.composite_trust_gate import logistic
from resontinex.trust.errors import CalibrationError
from resontinex.trust.logs import log_event

if TYPE_CHECKING:
    import numpy as np

__all__ = ["METHODS", "CalibrationAdapter", "calibration_report", "reliability_diagram"]

METHODS = ("isotonic", "platt", "auto")
BACKENDS = ("auto", "python", "numpy")
MAX_SAMPLES = 50_000_000
_EPS = 1e-6
_FORMAT = "resontinex-trust/calibrator"
_FORMAT_VERSION = 1
_logger = logging.getLogger("resontinex.trust.calibration")


# ---------------------------------------------------------------- input checks


def _numpy_or_none() -> Any:
    try:
        import numpy
    except ImportError:  # the numpy extra is optional
        return None
    return numpy


def _check_scores(scores: Iterable[object], field: str = "scores") -> list[float]:
    out: list[float] = []
    for i, s in enumerate(scores):
        if type(s) is not float:
            # Real numbers and numpy scalars pass; bools, strings and None do not.
            if isinstance(s, bool | str | bytes) or not hasattr(s, "__float__"):
                raise CalibrationError(
                    f"{field}[{i}]: expected a number, got {type(s).__name__} {s!r}"
                )
            try:
                s = float(s)
            except (OverflowError, TypeError, ValueError):
                raise CalibrationError(
                    f"{field}[{i}]: must be a finite probability in [0, 1], got {s!r}"
                ) from None
        if not 0.0 <= s <= 1.0:  # also rejects NaN
            raise CalibrationError(
                f"{field}[{i}]: must be a finite probability in [0, 1], got {s!r}"
            )
        out.append(s)
        if len(out) > MAX_SAMPLES:
            raise CalibrationError(f"{field}: more than {MAX_SAMPLES} samples")
    return out


def _check_labels(labels: Iterable[object]) -> list[int]:
    out: list[int] = []
    for i, y in enumerate(labels):
        if y is True or y is False or (isinstance(y, int | float) and y in (0, 1)):
            out.append(int(y))
        elif hasattr(y, "item") and y.item() in (0, 1):  # numpy scalars
            out.append(int(y.item()))
        else:
            raise CalibrationError(f"labels[{i}]: expected 0/1 or a bool, got {y!r}")
        if len(out) > MAX_SAMPLES:
            raise CalibrationError(f"labels: more than {MAX_SAMPLES} samples")
    return out


def _check_arrays(np: Any, scores: Any, labels: Any) -> tuple[list[float], list[int]] | None:
    """Vectorised checks for numeric numpy arrays; None hands over to the element-wise checks."""
    if scores.ndim != 1 or labels.ndim != 1 or scores.dtype.kind != "f":
        return None
    if labels.dtype.kind not in "biu" or scores.size > MAX_SAMPLES:
        return None
    if scores.size and not (scores.min() >= 0.0 and scores.max() <= 1.0):
        return None  # the element-wise pass names the first bad index
    if labels.size and not np.isin(labels, (0, 1)).all():
        return None
    return scores.astype(float).tolist(), labels.astype(int).tolist()


def _check_data(
    scores: Iterable[object], labels: Iterable[object]
) -> tuple[list[float], list[int]]:
    if isinstance(scores, str | bytes) or isinstance(labels, str | bytes):
        raise CalibrationError("scores/labels: expected sequences of numbers, got a string")
    np = _numpy_or_none()
    if np is not None and isinstance(scores, np.ndarray) and isinstance(labels, np.ndarray):
        checked = _check_arrays(np, scores, labels)
        if checked is not None and len(checked[0]) == len(checked[1]):
            return checked
    s, y = _check_scores(scores), _check_labels(labels)
    if len(s) != len(y):
        raise CalibrationError(f"labels: length {len(y)} differs from scores length {len(s)}")
    return s, y


def _logit(s: float) -> float:
    s = _EPS if s < _EPS else 1.0 - _EPS if s > 1.0 - _EPS else s
    return math.log(s / (1.0 - s))


# ---------------------------------------------------------------- Platt scaling


def _platt_targets(labels: Sequence[int]) -> tuple[float, float, int, int]:
    pos = sum(labels)
    neg = len(labels) - pos
    return (pos + 1.0) / (pos + 2.0), 1.0 / (neg + 2.0), pos, neg


Derivatives = tuple[float, float, float, float, float]  # ga, gb, haa, hab, hbb


def _newton(
    objective: Callable[[float, float], float],
    derivatives: Callable[[float, float], Derivatives],
    start: tuple[float, float],
    n: int,
) -> tuple[float, float]:
    """Minimise a smooth convex function of (a, b): Newton steps with backtracking (Armijo)."""
    a, b = start
    value = objective(a, b)
    for _ in range(100):
        ga, gb, haa, hab, hbb = derivatives(a, b)
        if abs(ga) < 1e-9 * n and abs(gb) < 1e-9 * n:
            break
        haa, hbb = haa + 1e-12, hbb + 1e-12  # keeps the Hessian invertible on separable data
        det = haa * hbb - hab * hab
        da, db = -(hbb * ga - hab * gb) / det, -(haa * gb - hab * ga) / det
        slope, step = ga * da + gb * db, 1.0
        while step >= 1e-10:
            candidate = objective(a + step * da, b + step * db)
            if candidate <= value + 1e-4 * step * slope:
                a, b, value = a + step * da, b + step * db, candidate
                break
            step /= 2.0
        else:
            break
    return a, b


def _platt_fit_python(features: Sequence[float], labels: Sequence[int]) -> tuple[float, float]:
    hi_t, lo_t, pos, neg = _platt_targets(labels)
    pairs = [(f, hi_t if y else lo_t) for f, y in zip(features, labels, strict=True)]

    def objective(a: float, b: float) -> float:
        total = 0.0
        for f, t in pairs:
            z = a * f + b
            total += (z if z > 0 else 0.0) + math.log1p(math.exp(-abs(z))) - t * z
        return total

    def derivatives(a: float, b: float) -> Derivatives:
        ga = gb = haa = hab = hbb = 0.0
        for f, t in pairs:
            p = logistic(a * f + b)
            d, w = p - t, p * (1.0 - p)
            ga += d * f
            gb += d
            haa += w * f * f
            hab += w * f
            hbb += w
        return ga, gb, haa, hab, hbb

    return _newton(objective, derivatives, (0.0, math.log((pos + 1.0) / (neg + 1.0))), len(pairs))


def _platt_fit_numpy(np: Any, features: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    pos = float(labels.sum())
    neg = labels.size - pos
    targets = np.where(labels == 1, (pos + 1.0) / (pos + 2.0), 1.0 / (neg + 2.0))
    squares = features * features

    def objective(a: float, b: float) -> float:
        z = a * features + b
        return float(np.sum(np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z))) - targets * z))

    def derivatives(a: float, b: float) -> Derivatives:
        p = np.exp(-np.logaddexp(0.0, -(a * features + b)))
        d, w = p - targets, p * (1.0 - p)
        return (
            float(d @ features),
            float(d.sum()),
            float(w @ squares),
            float(w @ features),
            float(w.sum()),
        )

    return _newton(objective, derivatives, (0.0, math.log((pos + 1.0) / (neg + 1.0))), labels.size)


# ---------------------------------------------------------------- isotonic regression (PAV)


def _pav(
    xs: Sequence[float], weights: Sequence[float], sums: Sequence[float]
) -> tuple[list[float], list[float]]:
    """PAV over distinct sorted scores → (block centroids, block means), strictly increasing."""
    bw: list[float] = []  # block weight
    by: list[float] = []  # block label sum
    bx: list[float] = []  # block weighted score sum
    for x, w, s in zip(xs, weights, sums, strict=True):
        bw.append(w)
        by.append(s)
        bx.append(w * x)
        while len(bw) > 1 and by[-2] * bw[-1] >= by[-1] * bw[-2]:  # mean[-2] >= mean[-1]
            w_last, y_last, x_last = bw.pop(), by.pop(), bx.pop()
            bw[-1] += w_last
            by[-1] += y_last
            bx[-1] += x_last
    return [x / w for x, w in zip(bx, bw, strict=True)], [
        y / w for y, w in zip(by, bw, strict=True)
    ]


def _isotonic_fit_python(
    scores: Sequence[float], labels: Sequence[int]
) -> tuple[list[float], list[float]]:
    order = sorted(range(len(scores)), key=scores.__getitem__)
    xs: list[float] = []
    weights: list[float] = []
    sums: list[float] = []
    for i in order:
        s = scores[i]
        if xs and xs[-1] == s:
            weights[-1] += 1.0
            sums[-1] += labels[i]
        else:
            xs.append(s)
            weights.append(1.0)
            sums.append(float(labels[i]))
    return _pav(xs, weights, sums)


def _isotonic_fit_numpy(
    np: Any, scores: np.ndarray, labels: np.ndarray
) -> tuple[list[float], list[float]]:
    xs, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=labels.astype(float), minlength=xs.size)
    return _pav(xs.tolist(), counts.astype(float).tolist(), sums.tolist())


# ---------------------------------------------------------------- the adapter


class CalibrationAdapter:
    """Maps raw trust scores to calibrated probabilities; plugs into ``CompositeTrustGate``."""

    def __init__(
        self,
        method: str = "auto",
        *,
        min_samples: int = 50,
        isotonic_min_samples: int = 500,
        backend: str = "auto",
        numpy_threshold: int = 20_000,
    ) -> None:
        if method not in METHODS:
            raise CalibrationError(f"method: expected one of {METHODS}, got {method!r}")
        if backend not in BACKENDS:
            raise CalibrationError(f"backend: expected one of {BACKENDS}, got {backend!r}")
        for name, value, low in (
            ("min_samples", min_samples, 2),
            ("isotonic_min_samples", isotonic_min_samples, 2),
            ("numpy_threshold", numpy_threshold, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise CalibrationError(f"{name}: expected an integer >= {low}, got {value!r}")
        self.method = method
        self.min_samples = min_samples
        self.isotonic_min_samples = isotonic_min_samples
        self.backend = backend
        self.numpy_threshold = numpy_threshold
        self.fitted_method: str | None = None
        self.platt: tuple[float, float] | None = None
        self.knots_x: list[float] = []
        self.knots_y: list[float] = []
        self.fit_report: dict[str, Any] = {}

    @property
    def is_fitted(self) -> bool:
        return self.fitted_method is not None

    @property
    def is_monotone(self) -> bool:
        """Whether the fitted map is non-decreasing, checked on the parameters (never assumed).

        Platt needs a finite slope a > 0; isotonic needs strictly increasing knot scores and
        non-decreasing knot values. False when unfitted. ``explain()`` reports this.
        """
        if self.platt is not None:
            a, b = self.platt
            return math.isfinite(a) and math.isfinite(b) and a > 0.0
        if self.fitted_method != "isotonic" or not self.knots_x:
            return False
        return all(x1 > x0 for x0, x1 in itertools.pairwise(self.knots_x)) and all(
            y1 >= y0 for y0, y1 in itertools.pairwise(self.knots_y)
        )

    def __repr__(self) -> str:
        state = self.fitted_method or "unfitted"
        return f"CalibrationAdapter(method={self.method!r}, state={state!r})"

    # -------------------------------------------------------- fitting

    def _numpy_for(self, n: int) -> Any:
        if self.backend == "python":
            return None
        np = _numpy_or_none()
        if np is None and self.backend == "numpy":
            raise CalibrationError(
                "backend: 'numpy' requested but numpy is not installed (extra 'numpy')"
            )
        if self.backend == "auto" and n < self.numpy_threshold:
            return None
        return np

    def _fit_method(self, method: str, scores: list[float], labels: list[int]) -> bool:
        np = self._numpy_for(len(scores))
        if method == "platt":
            if np is not None:
                clipped = np.clip(np.asarray(scores), _EPS, 1 - _EPS)
                feats = np.log(clipped / (1.0 - clipped))  # the same logit as _logit()
                a, b = _platt_fit_numpy(np, feats, np.asarray(labels, dtype=float))
            else:
                a, b = _platt_fit_python([_logit(s) for s in scores], labels)
            if not (math.isfinite(a) and math.isfinite(b)) or a <= 0.0:
                self._refuse(
                    f"Platt fit has slope {a!r}: scores are not positively related to labels"
                )
                return False
            self.platt, self.knots_x, self.knots_y = (a, b), [], []
        else:
            if np is not None:
                xs, ys = _isotonic_fit_numpy(np, np.asarray(scores), np.asarray(labels))
            else:
                xs, ys = _isotonic_fit_python(scores, labels)
            self.platt, self.knots_x, self.knots_y = None, xs, ys
        self.fitted_method = method
        return True

    def _refuse(self, reason: str) -> None:
        self.fit_report = {"fitted": False, "reason": reason}
        log_event(_logger, logging.WARNING, "calibration_fit_refused", reason=reason)

    def fit(self, scores: Iterable[object], labels: Iterable[object]) -> bool:
        """Fit on raw scores and 0/1 outcomes; False (reason logged) if the data cannot carry it."""
        s, y = _check_data(scores, labels)
        self.fitted_method, self.platt, self.knots_x, self.knots_y = None, None, [], []
        if len(s) < self.min_samples:
            self._refuse(f"{len(s)} samples, at least {self.min_samples} needed")
            return False
        positives = sum(y)
        if positives in (0, len(y)):
            self._refuse("labels contain one class only")
            return False
        method, heldout = self.method, dict[str, float]()
        if method == "auto":
            method, heldout = self._choose(s, y)
        if not self._fit_method(method, s, y):
            return False
        self.fit_report = {
            "fitted": True,
            "method": method,
            "samples": len(s),
            "positives": positives,
            "heldout_log_loss": heldout,
        }
        log_event(_logger, logging.INFO, "calibration_fitted", **self.fit_report)
        return True

    def _choose(self, scores: list[float], labels: list[int]) -> tuple[str, dict[str, float]]:
        if len(scores) < self.isotonic_min_samples:
            return "platt", {}
        train = [i for i in range(len(scores)) if i % 5]
        test = [i for i in range(len(scores)) if i % 5 == 0]
        test_y = [labels[i] for i in test]
        if sum(test_y) in (0, len(test_y)):
            return "platt", {}
        losses: dict[str, float] = {}
        for method in ("platt", "isotonic"):
            probe = CalibrationAdapter(
                method, min_samples=2, backend=self.backend, numpy_threshold=self.numpy_threshold
            )
            if probe.fit([scores[i] for i in train], [labels[i] for i in train]):
                preds = [probe._predict_unchecked(scores[i]) for i in test]
                losses[method] = log_loss(preds, test_y)
        if not losses:
            return "isotonic", {}
        return min(losses, key=losses.__getitem__), losses

    # -------------------------------------------------------- prediction

    def _predict_unchecked(self, score: float) -> float:
        if self.platt is not None:
            a, b = self.platt
            return logistic(a * _logit(score) + b)
        xs, ys = self.knots_x, self.knots_y
        if score <= xs[0]:
            return ys[0]
        if score >= xs[-1]:
            return ys[-1]
        j = bisect.bisect_right(xs, score) - 1
        # The fraction of the gap is in [0, 1], so nothing overflows even for knots a
        # subnormal apart (a slope would: 0.5 / 5e-324 is inf, and inf * 0 is NaN). The clamp
        # to the segment keeps rounding from stepping past the next knot: monotone to the bit.
        fraction = (score - xs[j]) / (xs[j + 1] - xs[j])
        return min(ys[j + 1], ys[j] + (ys[j + 1] - ys[j]) * fraction)

    def predict(self, score: float) -> float | None:
        """The calibrated probability of ``score``, or None when the adapter is not fitted."""
        if self.fitted_method is None:
            return None
        if not (type(score) is float and 0.0 <= score <= 1.0):
            score = _check_scores([score], "score")[0]
        return self._predict_unchecked(score)

    def predict_many(self, scores: Any) -> Any:
        """Vectorised predict: a numpy array in, a numpy array out (a list for a list)."""
        if self.fitted_method is None:
            raise CalibrationError("calibrator: predict_many needs a fitted calibrator")
        np = _numpy_or_none()
        if np is None or not isinstance(scores, np.ndarray):
            return [self._predict_unchecked(s) for s in _check_scores(scores)]
        arr = np.asarray(scores, dtype=float)
        if arr.size and not (np.all(arr >= 0.0) and np.all(arr <= 1.0)):
            bad = int(np.flatnonzero(~((arr >= 0.0) & (arr <= 1.0)))[0])
            raise CalibrationError(
                f"scores[{bad}]: must be a finite probability in [0, 1], got {arr[bad]!r}"
            )
        if self.platt is not None:
            a, b = self.platt
            clipped = np.clip(arr, _EPS, 1 - _EPS)
            z = a * np.log(clipped / (1.0 - clipped)) + b
            return np.exp(-np.logaddexp(0.0, -z))
        return np.interp(arr, self.knots_x, self.knots_y)

    # -------------------------------------------------------- reports and persistence

    def report(
        self, scores: Iterable[object], labels: Iterable[object], n_bins: int = 15
    ) -> dict[str, Any]:
        """Quality before and after calibration on (ideally held-out) data."""
        s, y = _check_data(scores, labels)
        if not s:
            raise CalibrationError("scores: empty")
        before = _report(s, y, n_bins)
        if not self.is_fitted:
            return {"before": before, "after": None}
        return {
            "before": before,
            "after": _report([self._predict_unchecked(v) for v in s], y, n_bins),
        }

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": _FORMAT,
                "format_version": _FORMAT_VERSION,
                "method": self.method,
                "fitted_method": self.fitted_method,
                "platt": list(self.platt) if self.platt else None,
                "knots_x": self.knots_x,
                "knots_y": self.knots_y,
                "min_samples": self.min_samples,
                "isotonic_min_samples": self.isotonic_min_samples,
                "fit_report": self.fit_report,
            },
            sort_keys=True,
            allow_nan=False,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> CalibrationAdapter:
        """Rebuild from :meth:`to_json`; anything malformed raises :class:`CalibrationError`."""
        try:
            data = json.loads(text)
        except (ValueError, TypeError, RecursionError) as exc:
            raise CalibrationError(f"calibrator JSON: not valid JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise CalibrationError(f"calibrator JSON: format must be {_FORMAT!r}")
        if data.get("format_version") != _FORMAT_VERSION:
            raise CalibrationError(
                f"calibrator JSON: format_version {data.get('format_version')!r} unsupported"
            )
        try:
            adapter = cls(
                data["method"],
                min_samples=data["min_samples"],
                isotonic_min_samples=data["isotonic_min_samples"],
            )
            fitted, platt = data["fitted_method"], data["platt"]
            xs, ys = data["knots_x"], data["knots_y"]
        except KeyError as exc:
            raise CalibrationError(f"calibrator JSON: missing key {exc}") from None
        if fitted == "platt":
            if (
                not (isinstance(platt, list) and len(platt) == 2 and all(_finite(v) for v in platt))
                or platt[0] <= 0
            ):
                raise CalibrationError(f"calibrator JSON: platt must be [a > 0, b], got {platt!r}")
            adapter.platt = (float(platt[0]), float(platt[1]))
        elif fitted == "isotonic":
            if not (isinstance(xs, list) and isinstance(ys, list) and xs and len(xs) == len(ys)):
                raise CalibrationError(
                    "calibrator JSON: knots_x/knots_y must be equal-length non-empty lists"
                )
            if not all(_finite(v) and 0.0 <= v <= 1.0 for v in xs + ys):
                raise CalibrationError("calibrator JSON: knots must be probabilities in [0, 1]")
            if any(b <= a for a, b in itertools.pairwise(xs)) or any(
                b < a for a, b in itertools.pairwise(ys)
            ):
                raise CalibrationError("calibrator JSON: knots must increase (monotone map)")
            adapter.knots_x, adapter.knots_y = [float(v) for v in xs], [float(v) for v in ys]
        elif fitted is not None:
            raise CalibrationError(f"calibrator JSON: fitted_method {fitted!r} unknown")
        adapter.fitted_method = fitted
        adapter.fit_report = data.get("fit_report") or {}
        return adapter


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def calibration_report(
    probs: Iterable[object], labels: Iterable[object], n_bins: int = 15
) -> dict[str, Any]:
    """ECE (equal-mass bins), Brier score, log loss, ROC AUC and the reliability table.

    Validates like :meth:`CalibrationAdapter.fit`: NaN, out-of-range or empty data raise
    :class:`CalibrationError` rather than come back as NaN metrics (or a ZeroDivisionError).
    """
    p, y = _check_data(probs, labels)
    if not p:
        raise CalibrationError("probs: empty")
    return _report(p, y, n_bins)


def _report(probs: Sequence[float], labels: Sequence[int], n_bins: int) -> dict[str, Any]:
    """The report on validated, non-empty data.

    ``n_bins`` must be a positive integer: zero bins would report an ECE of 0, a fake "perfect".
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise CalibrationError(f"n_bins: expected an integer >= 1, got {n_bins!r}")
    return {
        "samples": len(probs),
        "ece": expected_calibration_error(probs, labels, n_bins),
        "brier": brier_score(probs, labels),
        "log_loss": log_loss(probs, labels),
        "auc": roc_auc(probs, labels),
        "reliability": reliability_table(probs, labels, n_bins),
    }


def reliability_diagram(
    path: str | os.PathLike[str],
    curves: dict[str, dict[str, Any]],
    title: str = "Reliability diagram",
) -> bool:
    """Write a PNG of reliability tables (name → calibration_report); False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(7.5, 5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    for name, rep in curves.items():
        rows = rep["reliability"]
        ax.plot(
            [r["mean_predicted"] for r in rows],
            [r["observed_rate"] for r in rows],
            marker="o",
            label=f"{name} (ECE {rep['ece']:.3f})",
        )
    ax.set(
        xlabel="mean predicted probability (per bin)",
        ylabel="observed positive rate (per bin)",
        title=title,
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return True
