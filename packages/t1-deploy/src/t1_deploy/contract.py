"""The T1 release contract: non-inferiority of the routed candidate against the production T0.

Guards (thresholds configurable, seed defaults): the 95 % BCa lower bound of the mean per-query
ΔnDCG@10 (candidate − T0, same queries) > 0 globally (strict, so a candidate identical to T0 — a
degenerate interval at 0 — is not authorised as an improvement) and ≥ 0 on the hard-NL slice;
candidate p95 ≤ 119 ms, Δp95 vs T0 ≤ +1 ms and p99/p95 ≤ 2; mean per-query Jaccard@10 of the
candidate's HNSW ranking against exact search ≥ 0.80; |AECE(test) − AECE(validation)| ≤ 0.01, where
AECE compares the router's confidence with the realised benefit (upshift gain > 0) in 10
equal-mass bins.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from t1_deploy._io import atomic_write_text
from t1_deploy._validate import check_array, check_int, check_number, check_same_length
from t1_deploy.errors import InvalidInputError, NotFittedError
from t1_deploy.stats import adaptive_ece, paired_bca_interval


@dataclass(frozen=True)
class ProductionGuards:
    lcb_min_delta_ndcg: float = 0.0
    p95_max_ms: float = 119.0
    delta_p95_max_ms: float = 1.0
    p99_p95_ratio_max: float = 2.0
    jaccard_min: float = 0.80
    aece_drift_max: float = 0.01
    confidence: float = 0.95
    n_resamples: int = 2000
    aece_bins: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        check_number("ProductionGuards.lcb_min_delta_ndcg", self.lcb_min_delta_ndcg, low=-1, high=1)
        check_number("ProductionGuards.p95_max_ms", self.p95_max_ms, low=0)
        check_number("ProductionGuards.delta_p95_max_ms", self.delta_p95_max_ms)
        check_number("ProductionGuards.p99_p95_ratio_max", self.p99_p95_ratio_max, low=1)
        check_number("ProductionGuards.jaccard_min", self.jaccard_min, low=0, high=1)
        check_number("ProductionGuards.aece_drift_max", self.aece_drift_max, low=0, high=1)
        check_number("ProductionGuards.confidence", self.confidence, low=0.5, high=0.999)
        check_int("ProductionGuards.n_resamples", self.n_resamples, low=100, high=10**6)
        check_int("ProductionGuards.aece_bins", self.aece_bins, low=1, high=1000)


@dataclass(frozen=True)
class BaselineMetrics:
    """What production T0 measured on the evaluation queries, and the reference calibration."""

    ndcg: float
    p95_ms: float
    aece_reference: float
    n_queries: int


@dataclass
class CandidateEvidence:
    """Per-query measurements of the candidate and of T0 on the same queries."""

    ndcg_candidate: npt.NDArray[np.float64]
    ndcg_baseline: npt.NDArray[np.float64]
    latency_candidate_ms: npt.NDArray[np.float64]
    latency_baseline_ms: npt.NDArray[np.float64]
    hard_nl: npt.NDArray[np.bool_]
    jaccard: npt.NDArray[np.float64]
    router_confidence: npt.NDArray[np.float64]
    realised_benefit: npt.NDArray[np.float64]

    def __post_init__(self) -> None:
        names = [
            "ndcg_candidate",
            "ndcg_baseline",
            "latency_candidate_ms",
            "latency_baseline_ms",
            "jaccard",
            "router_confidence",
            "realised_benefit",
        ]
        arrays = [check_array(n, getattr(self, n), min_len=2) for n in names]
        for n, a in zip(names, arrays, strict=True):
            object.__setattr__(self, n, a)
        self.hard_nl = np.asarray(self.hard_nl, dtype=bool)
        check_same_length([*names, "hard_nl"], [*arrays, self.hard_nl])
        if np.any(self.latency_candidate_ms < 0) or np.any(self.latency_baseline_ms < 0):
            raise InvalidInputError("latencies must be non-negative")


@dataclass
class GuardResult:
    name: str
    value: float
    threshold: float
    comparison: str  # ">=", ">" or "<="
    passed: bool
    detail: str = ""


@dataclass
class ContractResult:
    verdict: str  # "AUTHORISED" or "BLOCKED"
    guards: list[GuardResult]
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def authorised(self) -> bool:
        return self.verdict == "AUTHORISED"


def _guard(
    name: str, value: float, threshold: float, comparison: str, detail: str = ""
) -> GuardResult:
    checks = {">=": value >= threshold, ">": value > threshold, "<=": value <= threshold}
    passed = checks[comparison]
    return GuardResult(name, float(value), float(threshold), comparison, bool(passed), detail)


class T1ReleaseContract:
    """Validate a candidate against the production baseline and write the contract document."""

    def __init__(
        self, baseline_metrics: BaselineMetrics, production_guards: ProductionGuards | None = None
    ) -> None:
        if not isinstance(baseline_metrics, BaselineMetrics):
            raise InvalidInputError(
                f"baseline_metrics must be BaselineMetrics, got {type(baseline_metrics).__name__}"
            )
        self.baseline = baseline_metrics
        self.guards = production_guards or ProductionGuards()
        self.result: ContractResult | None = None

    def validate_release_contract(self, candidate: CandidateEvidence) -> ContractResult:
        if not isinstance(candidate, CandidateEvidence):
            raise InvalidInputError(
                f"candidate must be CandidateEvidence, got {type(candidate).__name__}"
            )
        g = self.guards
        diffs = candidate.ndcg_candidate - candidate.ndcg_baseline
        overall = paired_bca_interval(
            diffs, confidence=g.confidence, n_resamples=g.n_resamples, seed=g.seed
        )
        guards = [
            _guard(
                "lcb_delta_ndcg_global",
                overall.low,
                g.lcb_min_delta_ndcg,
                ">",
                f"mean {overall.mean:+.5f}, {g.confidence:.0%} {overall.method} "
                f"[{overall.low:+.5f}, {overall.high:+.5f}], n={overall.n}",
            )
        ]
        hard = diffs[candidate.hard_nl]
        if len(hard) >= 2:
            hard_ci = paired_bca_interval(
                hard, confidence=g.confidence, n_resamples=g.n_resamples, seed=g.seed
            )
            guards.append(
                _guard(
                    "lcb_delta_ndcg_hard_nl",
                    hard_ci.low,
                    g.lcb_min_delta_ndcg,
                    ">=",
                    f"mean {hard_ci.mean:+.5f}, {hard_ci.method} [{hard_ci.low:+.5f}, "
                    f"{hard_ci.high:+.5f}], n={hard_ci.n}",
                )
            )
        else:
            guards.append(
                _guard(
                    "lcb_delta_ndcg_hard_nl",
                    -math.inf,
                    g.lcb_min_delta_ndcg,
                    ">=",
                    f"only {len(hard)} hard-NL queries: cannot bound the effect",
                )
            )
        p95 = float(np.percentile(candidate.latency_candidate_ms, 95))
        p99 = float(np.percentile(candidate.latency_candidate_ms, 99))
        p95_base = float(np.percentile(candidate.latency_baseline_ms, 95))
        guards += [
            _guard("p95_latency_ms", p95, g.p95_max_ms, "<="),
            _guard(
                "delta_p95_latency_ms",
                p95 - p95_base,
                g.delta_p95_max_ms,
                "<=",
                f"candidate {p95:.4f} ms vs T0 {p95_base:.4f} ms",
            ),
            _guard(
                "p99_p95_ratio",
                p99 / p95 if p95 > 0 else math.inf,
                g.p99_p95_ratio_max,
                "<=",
                f"p99 {p99:.4f} ms",
            ),
            _guard(
                "jaccard_at_10",
                float(candidate.jaccard.mean()),
                g.jaccard_min,
                ">=",
                "mean over queries of per-query Jaccard@10 (HNSW vs exact search)",
            ),
        ]
        conf = np.clip(candidate.router_confidence, 0.0, 1.0)
        aece = adaptive_ece(conf, candidate.realised_benefit, g.aece_bins)
        guards.append(
            _guard(
                "aece_drift",
                abs(aece - self.baseline.aece_reference),
                g.aece_drift_max,
                "<=",
                f"AECE {aece:.4f} vs reference {self.baseline.aece_reference:.4f}",
            )
        )
        verdict = "AUTHORISED" if all(r.passed for r in guards) else "BLOCKED"
        self.result = ContractResult(
            verdict,
            guards,
            {
                "ndcg_candidate": float(candidate.ndcg_candidate.mean()),
                "ndcg_baseline": float(candidate.ndcg_baseline.mean()),
                "delta_ndcg": overall.mean,
                "n_queries": len(diffs),
                "n_hard_nl": int(candidate.hard_nl.sum()),
                "aece": aece,
            },
        )
        return self.result

    def generate_release_contract_document(self, path: str | Path) -> Path:
        if self.result is None:
            raise NotFittedError("validate_release_contract must run first")
        r, g = self.result, self.guards
        lines = [
            "# T1 release contract",
            "",
            f"**Verdict: {r.verdict}**",
            "",
            "Candidate = T0 with router-gated upshift to T1;",
            "baseline = production T0 on the same queries.",
            f"Queries: {r.summary['n_queries']} (hard-NL: {r.summary['n_hard_nl']}).",
            f"nDCG@10: candidate {r.summary['ndcg_candidate']:.4f}, "
            f"T0 {r.summary['ndcg_baseline']:.4f}, "
            f"Δ {r.summary['delta_ndcg'] * 100:+.2f} pp.",
            "",
            "## Guards",
            "",
            "| guard | value | threshold | passed | detail |",
            "| --- | --- | --- | --- | --- |",
        ]
        for x in r.guards:
            lines.append(
                f"| {x.name} | {x.value:.5f} | {x.comparison} {x.threshold:g} | "
                f"{'yes' if x.passed else 'NO'} | {x.detail} |"
            )
        lines += [
            "",
            "## Method",
            "",
            f"- LCB: two-sided {g.confidence:.0%} BCa bootstrap "
            f"({g.n_resamples} resamples of queries) "
            "of the mean paired difference; identical differences give a degenerate interval.",
            "- nDCG@10: binary gain, one relevant document, 1/log2(rank+1), ideal DCG 1.",
            f"- AECE: {g.aece_bins} equal-mass bins of router confidence vs realised benefit.",
            "",
            "## Rollback triggers (monitoring)",
            "",
            "- quality: CUSUM of windowed ΔnDCG shortfall above its calibrated limit for 3 windows",
            "- latency: p95 > 120 ms for 5 consecutive one-minute windows",
            "- stability: Jaccard@10 < 0.75; calibration: AECE drift > 0.02",
            "",
        ]
        return atomic_write_text(Path(path), "\n".join(lines))

    def to_dict(self) -> dict[str, Any]:
        if self.result is None:
            raise NotFittedError("validate_release_contract must run first")
        return {
            "verdict": self.result.verdict,
            "guards": [asdict(x) for x in self.result.guards],
            "summary": self.result.summary,
            "thresholds": asdict(self.guards),
        }


@dataclass
class OperatingCharacteristics:
    n_queries: int
    n_simulations: int
    pass_rate_null: float
    power_at_effect: float
    effect: float


def simulate_operating_characteristics(
    differences: npt.ArrayLike,
    *,
    n_queries: int,
    effect: float = 0.01,
    n_simulations: int = 200,
    confidence: float = 0.95,
    n_resamples: int = 999,
    seed: int = 0,
) -> OperatingCharacteristics:
    """Pass rate of the global LCB guard when the true Δ is 0, and its power at Δ = `effect`.

    Synthetic evaluations resample `n_queries` measured per-query differences with random signs
    (a null with the real spread whose zeros stay zeros: subtracting the mean instead would give
    every unchanged query a tiny constant "improvement"), then add `effect` for the power run.
    """
    diffs = check_array("differences", differences, min_len=10)
    n_queries = check_int("n_queries", n_queries, low=10, high=10**6)
    check_number("effect", effect, low=-1, high=1)
    n_simulations = check_int("n_simulations", n_simulations, low=10, high=10**5)
    rng = np.random.default_rng(seed)
    rates = []
    for shift in (0.0, effect):
        passes = 0
        for i in range(n_simulations):
            sample = rng.choice(diffs, size=n_queries) * rng.choice([-1.0, 1.0], size=n_queries)
            sample = sample + shift
            ci = paired_bca_interval(
                sample, confidence=confidence, n_resamples=n_resamples, seed=seed + i
            )
            passes += int(ci.low > 0.0)  # the global guard's rule
        rates.append(passes / n_simulations)
    return OperatingCharacteristics(
        n_queries=n_queries,
        n_simulations=n_simulations,
        pass_rate_null=rates[0],
        power_at_effect=rates[1],
        effect=effect,
    )


def queries_for_power(
    differences: npt.ArrayLike, effect: float = 0.01, power: float = 0.8, confidence: float = 0.95
) -> int:
    """Normal-approximation sample size for the one-sided test at the LCB's level."""
    from scipy.stats import norm

    diffs = check_array("differences", differences, min_len=2)
    sd = float(diffs.std(ddof=1))
    z_a = float(norm.ppf(1 - (1 - confidence) / 2))
    z_b = float(norm.ppf(power))
    return max(100, math.ceil(((z_a + z_b) * sd / effect) ** 2))
