"""Statistics every component shares: nDCG@10, paired BCa bootstrap, Jaccard, AECE, ESS, PSIS k̂.

nDCG convention (one relevant document per query, binary gain): DCG@k = Σ_{i≤k} rel_i / log2(i + 1)
with ranks starting at 1, and the ideal DCG is 1, so nDCG@10 = 1/log2(rank + 1) when the relevant
document sits at rank ≤ 10 and 0 otherwise. This is trec_eval's `ndcg_cut_10` for binary qrels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from t1_deploy._validate import check_array, check_int, check_number
from t1_deploy.errors import InvalidInputError

FloatArray = npt.NDArray[np.float64]


def ndcg_at_k(ranking: Sequence[int], relevant: int, k: int = 10) -> float:
    """nDCG@k of one ranking for a query with exactly one relevant document id."""
    for position, doc in enumerate(ranking[:k], start=1):
        if doc == relevant:
            return 1.0 / math.log2(position + 1)
    return 0.0


def jaccard_at_k(a: Sequence[int], b: Sequence[int], k: int = 10) -> float:
    """|A ∩ B| / |A ∪ B| of the two top-k sets (1.0 when both are empty)."""
    sa, sb = set(a[:k]), set(b[:k])
    union = sa | sb
    return 1.0 if not union else len(sa & sb) / len(union)


def percentile(values: npt.ArrayLike, q: float) -> float:
    """The q-th percentile (linear interpolation), of finite non-empty values."""
    arr = check_array("values", values)
    return float(np.percentile(arr, check_number("q", q, low=0.0, high=100.0)))


@dataclass(frozen=True)
class BootstrapInterval:
    """A paired bootstrap confidence interval of the mean difference."""

    mean: float
    low: float
    high: float
    n: int
    method: str  # "BCa", or "degenerate" when every difference is identical


def paired_bca_interval(
    differences: npt.ArrayLike,
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> BootstrapInterval:
    """Two-sided BCa interval of the mean of paired per-query differences.

    Resampling queries (not scores) keeps the pairing. When every difference is the same the
    bootstrap distribution is a point, BCa is undefined, and the interval collapses to that value.
    """
    diffs = check_array("differences", differences, min_len=2)
    check_number("confidence", confidence, low=0.5, high=0.999)
    check_int("n_resamples", n_resamples, low=100, high=1_000_000)
    mean = float(diffs.mean())
    if np.ptp(diffs) == 0.0:
        return BootstrapInterval(mean, mean, mean, len(diffs), "degenerate")
    from scipy import stats

    result = stats.bootstrap(
        (diffs,),
        np.mean,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="BCa",
        random_state=np.random.default_rng(seed),
        vectorized=True,
    )
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    if not (math.isfinite(low) and math.isfinite(high)):
        # BCa's acceleration is undefined when almost all jackknife means coincide; the
        # percentile interval of the same resamples is then the honest fallback, and is named.
        dist = result.bootstrap_distribution
        alpha = (1.0 - confidence) / 2.0
        low, high = float(np.quantile(dist, alpha)), float(np.quantile(dist, 1.0 - alpha))
        return BootstrapInterval(mean, low, high, len(diffs), "percentile-fallback")
    return BootstrapInterval(mean, low, high, len(diffs), "BCa")


def adaptive_ece(confidence: npt.ArrayLike, outcome: npt.ArrayLike, n_bins: int = 10) -> float:
    """AECE: equal-mass bins of the confidence, mean |mean outcome − mean confidence| per bin."""
    conf = check_array("confidence", confidence)
    out = check_array("outcome", outcome)
    if len(conf) != len(out):
        raise InvalidInputError(f"confidence has {len(conf)} rows but outcome has {len(out)}")
    if conf.min() < 0.0 or conf.max() > 1.0:
        raise InvalidInputError("confidence must lie in [0, 1]")
    n_bins = check_int("n_bins", n_bins, low=1, high=1000)
    return _aece(conf, out, n_bins)


def _aece(conf: FloatArray, out: FloatArray, n_bins: int) -> float:
    """AECE without input checks, for hot loops (bins as numpy.array_split would cut them)."""
    n = len(conf)
    order = np.argsort(conf)
    k = min(n_bins, n)
    starts = np.array([i * (n // k) + min(i, n % k) for i in range(k)])
    sizes = np.diff(np.append(starts, n))
    mean_conf = np.add.reduceat(conf[order], starts) / sizes
    mean_out = np.add.reduceat(out[order], starts) / sizes
    return float(np.mean(np.abs(mean_out - mean_conf)))


def kish_ess(weights: npt.ArrayLike) -> float:
    """Kish effective sample size (Σw)² / Σw² of non-negative weights."""
    w = check_array("weights", weights)
    if w.min() < 0:
        raise InvalidInputError("weights must be non-negative")
    total = float(w.sum())
    return 0.0 if total == 0.0 else total**2 / float(np.sum(w**2))


def psis_khat(weights: npt.ArrayLike) -> float:
    """Pareto tail-shape k̂ of importance weights, as in PSIS (Vehtari et al. 2015/2024).

    Fits a generalized Pareto distribution to the largest M = min(n/5, 3√n) weights above the
    (M+1)-th largest, with the Zhang & Stephens (2009) profile-likelihood estimator and the
    weakly informative prior shrinkage of the PSIS paper. k̂ < 0.5: the IPW mean has finite
    variance; k̂ > 0.7: estimates are unreliable.
    """
    w = check_array("weights", weights, min_len=5)
    if w.min() <= 0:
        raise InvalidInputError("weights must be positive")
    n = len(w)
    m = int(min(n / 5.0, 3.0 * math.sqrt(n)))
    if m < 5:
        raise InvalidInputError(f"weights: need a tail of >= 5 points, n={n} gives {m}")
    ordered = np.sort(w)
    tail = ordered[-m:] - ordered[-m - 1]
    # Exceedances at the threshold (up to rounding) are ties, not tail: weights from a logged
    # ε-greedy policy take a few values, and 1/0.1 vs 1/(1 − 0.9) differ only in the last bit.
    tail = tail[tail > 1e-9 * ordered[-1]]
    if len(tail) < 5:
        return -math.inf  # a point mass, not a heavy tail: the weights are bounded
    return _gpd_khat_zhang_stephens(tail)


def _gpd_khat_zhang_stephens(x: FloatArray) -> float:
    """Zhang & Stephens (2009) estimate of the GPD shape, with PSIS's prior adjustment."""
    x = np.sort(x)
    n = len(x)
    prior = 3.0
    m = 30 + int(math.sqrt(n))
    quartile = x[int(n / 4.0 + 0.5) - 1]
    bs = 1.0 - np.sqrt(m / (np.arange(1, m + 1) - 0.5))
    bs = bs / (prior * quartile) + 1.0 / x[-1]
    ks = np.mean(np.log1p(-bs[:, None] * x[None, :]), axis=1)
    log_lik = n * (np.log(-bs / ks) - ks - 1.0)
    weights = 1.0 / np.sum(np.exp(log_lik[None, :] - log_lik[:, None]), axis=1)
    b_post = float(np.sum(bs * weights))
    k = float(np.mean(np.log1p(-b_post * x)))
    # PSIS: shrink towards 0.5 with a weakly informative prior worth 10 observations.
    return (k * n + 10.0 * 0.5) / (n + 10.0)
