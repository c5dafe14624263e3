"""Drift detection on the stream of per-probe agreements with the reference signature.

A Bernoulli CUSUM watches disagreement events (a probe's similarity below the calibrated probe
threshold). Its alarm threshold ``h`` is calibrated by simulating in-control streams so that the
probability of a false alarm within ``horizon`` observations is the stated rate. On alarm, the
similarity history is classified into a drift type by the documented rules of
:func:`classify_drift`; :func:`generate_stream` produces labelled streams of each type.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from hbt_core.errors import InvalidInputError, check_finite_number, check_int

DRIFT_TYPES = ("sudden", "gradual", "periodic", "concept", "adversarial")


def _llr_steps(p_disagree0: float, p_disagree1: float) -> tuple[float, float]:
    """CUSUM increments for (disagree, agree) observations."""
    return (math.log(p_disagree1 / p_disagree0), math.log((1 - p_disagree1) / (1 - p_disagree0)))


def calibrate_cusum(
    p_disagree0: float,
    p_disagree1: float,
    horizon: int = 1000,
    false_alarm_rate: float = 0.05,
    n_sim: int = 2000,
    seed: int = 0,
) -> float:
    """Alarm threshold ``h`` with P(false alarm within ``horizon``) ~= ``false_alarm_rate``.

    Simulates ``n_sim`` in-control Bernoulli(p_disagree0) streams and takes the upper
    quantile of the running CUSUM maximum.
    """
    q0 = check_finite_number("p_disagree0", p_disagree0, low=1e-6, high=0.999)
    q1 = check_finite_number("p_disagree1", p_disagree1, low=1e-6, high=0.999999)
    if q1 <= q0:
        raise InvalidInputError(f"p_disagree1 must exceed p_disagree0, got {q1} <= {q0}")
    check_int("horizon", horizon, low=1, high=1_000_000)
    far = check_finite_number("false_alarm_rate", false_alarm_rate, low=1e-4, high=0.5)
    check_int("n_sim", n_sim, low=100, high=1_000_000)
    up, down = _llr_steps(q0, q1)
    rng = np.random.default_rng(seed)
    s = np.zeros(n_sim)
    peak = np.zeros(n_sim)
    for _ in range(horizon):
        x = rng.random(n_sim) < q0
        s = np.maximum(0.0, s + np.where(x, up, down))
        np.maximum(peak, s, out=peak)
    return float(np.quantile(peak, 1 - far))


class BernoulliCUSUM:
    """One-sided CUSUM for an increase of the disagreement rate from ``q0`` to ``q1``."""

    def __init__(self, p_disagree0: float, p_disagree1: float, threshold: float) -> None:
        self.up, self.down = _llr_steps(p_disagree0, p_disagree1)
        self.threshold = check_finite_number("threshold", threshold, low=0.0)
        self.statistic = 0.0
        self.n = 0
        self.last_reset = 0

    def update(self, disagree: bool) -> bool:
        """Feed one observation; True when the statistic crosses the threshold (then resets)."""
        self.n += 1
        self.statistic = max(0.0, self.statistic + (self.up if disagree else self.down))
        if self.statistic == 0.0:
            self.last_reset = self.n
        if self.statistic >= self.threshold:
            self.statistic = 0.0
            return True
        return False


def variance_stable(
    reference: npt.ArrayLike, observed: npt.ArrayLike, tolerance: float = 2.0
) -> tuple[bool, float]:
    """Is the mean per-probe response variance within a factor ``tolerance`` of the reference?"""
    ref = float(np.mean(np.asarray(reference, float)))
    obs = float(np.mean(np.asarray(observed, float)))
    tol = check_finite_number("tolerance", tolerance, low=1.0)
    if not (math.isfinite(ref) and math.isfinite(obs)):
        raise InvalidInputError("variances must be finite")
    ratio = (obs + 1e-9) / (ref + 1e-9)
    return (1 / tol <= ratio <= tol), ratio


@dataclass(frozen=True)
class DriftStream:
    """A labelled synthetic stream: similarities, probe domains, response variances."""

    kind: str
    similarity: npt.NDArray[np.float64]
    domains: npt.NDArray[np.int64]
    variance: npt.NDArray[np.float64]
    change_point: int


def generate_stream(
    kind: str,
    length: int = 600,
    change_point: int = 200,
    seed: int = 0,
    mu: float = 0.9,
    sigma: float = 0.01,
    n_domains: int = 5,
) -> DriftStream:
    """In-control N(mu, sigma) similarities, then drift of ``kind`` from ``change_point`` on."""
    if kind not in (*DRIFT_TYPES, "none"):
        raise InvalidInputError(f"kind must be one of {(*DRIFT_TYPES, 'none')}, got {kind!r}")
    check_int("length", length, low=10)
    check_int("change_point", change_point, low=1, high=length - 1)
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    domains = t % n_domains
    sim = mu + sigma * rng.standard_normal(length)
    var = 0.05 + 0.005 * rng.standard_normal(length)
    post = t >= change_point
    depth = rng.uniform(8, 15) * sigma
    if kind == "sudden":
        sim[post] -= depth
    elif kind == "gradual":
        ramp = (t - change_point) / (length - change_point)
        sim[post] -= 2 * depth * ramp[post]
    elif kind == "periodic":
        period = int(rng.integers(12, 40))
        on = ((t - change_point) // (period // 2)) % 2 == 0
        sim[post & on] -= depth
    elif kind == "concept":
        hit = domains == int(rng.integers(0, n_domains))
        sim[post & hit] -= 2 * depth
    elif kind == "adversarial":
        target = rng.random(length) < 0.15
        sim[post & target] -= 3 * depth
        var[post] *= 3.0
    return DriftStream(kind, sim, domains.astype(np.int64), var, change_point)


@dataclass(frozen=True)
class DriftClassification:
    kind: str
    evidence: dict[str, float] = field(default_factory=dict)


def _autocorrelation_peak(x: npt.NDArray[np.float64]) -> float:
    """Largest autocorrelation at lags >= 4 after removing a linear trend (ramps are not cycles)."""
    t = np.arange(len(x), dtype=float)
    if len(x) >= 2:
        x = x - np.polyval(np.polyfit(t, x, 1), t)
    x = x - x.mean()
    denom = float(x @ x)
    if denom <= 0 or len(x) < 12:
        return 0.0
    lags = range(4, len(x) // 3)
    return max((float(x[:-lag] @ x[lag:]) / denom for lag in lags), default=0.0)


def classify_drift(
    similarity: Sequence[float] | npt.NDArray[np.float64],
    domains: Sequence[int] | npt.NDArray[np.int64],
    variance: Sequence[float] | npt.NDArray[np.float64],
    change_point: int,
    mu: float,
    sigma: float,
) -> DriftClassification:
    """Classify the drift after ``change_point`` by fixed, documented rules (first match wins).

    With deficit ``z = (mu - similarity) / sigma`` on the post-change segment:

    1. adversarial: response variance rose by more than 2x while most probes (>= 60%) still
       look in-control (``z < 2``) -- erratic answers on a targeted minority;
    2. concept: the per-domain mean deficit is >= 5 in some domain and < 2 in another;
    3. periodic: the linearly detrended deficit's autocorrelation at a lag >= 4 exceeds 0.5;
    4. gradual: a linear ramp explains the deficit better than a step (SSE ratio < 0.7);
    5. otherwise sudden.
    """
    sim = np.asarray(similarity, float)
    dom = np.asarray(domains)
    var = np.asarray(variance, float)
    if not (sim.shape == dom.shape == var.shape) or sim.ndim != 1:
        raise InvalidInputError("similarity, domains and variance must be 1-D of equal length")
    check_int("change_point", change_point, low=0, high=len(sim) - 8)
    check_finite_number("sigma", sigma, low=1e-12)
    z = (mu - sim[change_point:]) / sigma
    d = dom[change_point:]
    var_ratio = (
        float(var[change_point:].mean() / max(var[:change_point].mean(), 1e-12))
        if change_point > 0
        else 1.0
    )
    quiet = float(np.mean(z < 2))
    ev: dict[str, float] = {"variance_ratio": var_ratio, "quiet_fraction": quiet}
    if var_ratio > 2.0 and quiet >= 0.6:
        return DriftClassification("adversarial", ev)
    per_domain = [float(z[d == k].mean()) for k in np.unique(d)]
    ev |= {"max_domain_deficit": max(per_domain), "min_domain_deficit": min(per_domain)}
    if max(per_domain) >= 5 and min(per_domain) < 2:
        return DriftClassification("concept", ev)
    acf = _autocorrelation_peak(z)
    ev["autocorrelation_peak"] = acf
    if acf > 0.5:
        return DriftClassification("periodic", ev)
    t = np.arange(len(z), dtype=float)
    step_sse = float(((z - z.mean()) ** 2).sum())
    slope = float((t @ z) / (t @ t)) if len(t) > 1 else 0.0
    ramp_sse = float(((z - slope * t) ** 2).sum())
    ev["ramp_to_step_sse"] = ramp_sse / max(step_sse, 1e-12)
    if ramp_sse < 0.7 * step_sse:
        return DriftClassification("gradual", ev)
    return DriftClassification("sudden", ev)
