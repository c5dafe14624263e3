"""The T1 release contract: the routed candidate against the production T0 on the same queries.

Every guard answers "passed", "failed" or "not evaluated" (with the reason); "not evaluated" is
never "passed". The verdict is AUTHORISED only when the global quality guard was evaluated and every
guard that could be evaluated passed.

- `noninferiority_global`: the 95 % BCa lower bound of the mean per-query ΔnDCG@10 (candidate − T0)
  must exceed −δ, δ = `noninferiority_margin` (δ = 0, the default, makes it a superiority test: a
  candidate identical to T0 — a degenerate interval at 0 — is not authorised).
- `noninferiority_hard_nl`: the same bound ≥ −δ_hard on the hard-NL slice, with its own margin
  δ_hard = `hard_nl_margin` (default 0.02: "no harm on the slice" — a margin of 0 would demand a
  significant improvement there too); not evaluated when the slice or the number of its queries
  routed to T1 is too small to bound anything.
- `jaccard_at_10_routed`: mean Jaccard@10 of T1 against its exact-search reference over the queries
  routed to T1 only (queries that never reach T1 say nothing about its index).
- `aece_drift`: AECE(current) − AECE(reference), bias-corrected by a permutation null of the same two
  sizes; fails only when it exceeds the tolerance and the permutation p-value is below α, so the
  false-fail rate without drift is at most α.
- `p95_ratio_vs_t0`, `p99_ratio_vs_t0` (and `p95_latency_ms` when an absolute SLO is configured):
  candidate tail latency (over queries, each query's latency the median of its repeated
  measurements) relative to T0 measured in the same run, with a bootstrap interval over queries; fails only when the interval's lower bound exceeds the SLO
  (defaults: p95 ≤ 2 × T0's p95, p99 ≤ 3 × T0's p99 — configuration, not constants of a machine).
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
from t1_deploy.stats import _aece, paired_bca_interval

PASSED, FAILED, NOT_EVALUATED = "passed", "failed", "not_evaluated"
REQUIRED_GUARDS = ("noninferiority_global",)


@dataclass(frozen=True)
class ProductionGuards:
    """Guard thresholds and the minimum data each guard needs before it is evaluated."""

    noninferiority_margin: float = 0.0
    hard_nl_margin: float = 0.02
    slo_p95_ratio: float = 2.0
    slo_p99_ratio: float = 3.0
    slo_p95_ms: float | None = None
    jaccard_min: float = 0.80
    aece_drift_max: float = 0.01
    aece_alpha: float = 0.05
    aece_permutations: int = 999
    min_hard_nl_queries: int = 30
    min_hard_nl_routed: int = 10
    min_routed_for_jaccard: int = 10
    min_latency_queries: int = 20
    min_p99_queries: int = 100
    min_aece_queries: int = 50
    confidence: float = 0.95
    n_resamples: int = 2000
    aece_bins: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        check_number(
            "ProductionGuards.noninferiority_margin", self.noninferiority_margin, low=0, high=1
        )
        check_number("ProductionGuards.hard_nl_margin", self.hard_nl_margin, low=0, high=1)
        check_number("ProductionGuards.slo_p95_ratio", self.slo_p95_ratio, low=1)
        check_number("ProductionGuards.slo_p99_ratio", self.slo_p99_ratio, low=1)
        if self.slo_p95_ms is not None:
            check_number("ProductionGuards.slo_p95_ms", self.slo_p95_ms, low=0)
        check_number("ProductionGuards.jaccard_min", self.jaccard_min, low=0, high=1)
        check_number("ProductionGuards.aece_drift_max", self.aece_drift_max, low=0, high=1)
        check_number("ProductionGuards.aece_alpha", self.aece_alpha, low=0.001, high=0.5)
        check_int("ProductionGuards.aece_permutations", self.aece_permutations, low=99, high=10**5)
        for name in (
            "min_hard_nl_queries",
            "min_hard_nl_routed",
            "min_routed_for_jaccard",
            "min_latency_queries",
            "min_p99_queries",
            "min_aece_queries",
        ):
            check_int(f"ProductionGuards.{name}", getattr(self, name), low=2, high=10**6)
        check_number("ProductionGuards.confidence", self.confidence, low=0.5, high=0.999)
        check_int("ProductionGuards.n_resamples", self.n_resamples, low=100, high=10**6)
        check_int("ProductionGuards.aece_bins", self.aece_bins, low=1, high=1000)
        check_int("ProductionGuards.seed", self.seed, low=0, high=2**32 - 1)


@dataclass(frozen=True)
class BaselineMetrics:
    """What production T0 measured on the evaluation queries, and the reference calibration window
    (router confidence and realised benefit) the AECE-drift guard compares against."""

    ndcg: float
    p95_ms: float
    aece_reference: float
    n_queries: int
    reference_confidence: npt.NDArray[np.float64] | None = None
    reference_benefit: npt.NDArray[np.float64] | None = None


def _optional(name: str, value: Any, n: int) -> npt.NDArray[np.float64] | None:
    if value is None:
        return None
    arr = check_array(name, value, min_len=2)
    check_same_length(["ndcg_candidate", name], [np.empty(n), arr])
    return arr


def _repetitions(name: str, value: Any, n: int) -> npt.NDArray[np.float64] | None:
    """(n, r) repeated latency measurements; NaN only as trailing padding of shorter rows."""
    if value is None:
        return None
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != n or arr.shape[1] < 1:
        raise InvalidInputError(f"{name} must have shape ({n}, repeats), got {arr.shape}")
    finite = np.isfinite(arr)
    if np.any(np.isinf(arr)) or not np.all(finite[:, 0]):
        raise InvalidInputError(f"{name}: every query needs a finite first measurement")
    if np.any(~finite[:, :-1] & finite[:, 1:]):
        raise InvalidInputError(f"{name}: NaN is allowed only as trailing padding")
    if np.any(arr[finite] < 0):
        raise InvalidInputError(f"{name}: latencies must be non-negative")
    return arr


@dataclass
class CandidateEvidence:
    """Per-query measurements of the candidate and of T0 on the same queries.

    Only the nDCG arrays are required; a guard whose inputs are None is reported "not evaluated".
    `routed` marks the queries the candidate sent to full T1; `jaccard` is read only there.
    `latency_*_reps` are (queries × repeats) measurements, NaN-padded, used by the latency guards
    in place of the single per-query values when given. `current_window` marks the queries whose
    router confidence forms the AECE-drift guard's current window (None: all of them).
    """

    ndcg_candidate: npt.NDArray[np.float64]
    ndcg_baseline: npt.NDArray[np.float64]
    latency_candidate_ms: npt.NDArray[np.float64] | None = None
    latency_baseline_ms: npt.NDArray[np.float64] | None = None
    hard_nl: npt.NDArray[np.bool_] | None = None
    jaccard: npt.NDArray[np.float64] | None = None
    router_confidence: npt.NDArray[np.float64] | None = None
    realised_benefit: npt.NDArray[np.float64] | None = None
    routed: npt.NDArray[np.bool_] | None = None
    latency_candidate_reps: npt.NDArray[np.float64] | None = None
    latency_baseline_reps: npt.NDArray[np.float64] | None = None
    current_window: npt.NDArray[np.bool_] | None = None

    def __post_init__(self) -> None:
        self.ndcg_candidate = check_array("ndcg_candidate", self.ndcg_candidate, min_len=2)
        self.ndcg_baseline = check_array("ndcg_baseline", self.ndcg_baseline, min_len=2)
        n = len(self.ndcg_candidate)
        check_same_length(
            ["ndcg_candidate", "ndcg_baseline"], [self.ndcg_candidate, self.ndcg_baseline]
        )
        for name in (
            "latency_candidate_ms",
            "latency_baseline_ms",
            "jaccard",
            "router_confidence",
            "realised_benefit",
        ):
            setattr(self, name, _optional(name, getattr(self, name), n))
        for name in ("hard_nl", "routed", "current_window"):
            value = getattr(self, name)
            if value is not None:
                mask = np.asarray(value)
                if mask.dtype != np.bool_ or mask.shape != (n,):
                    raise InvalidInputError(
                        f"{name} must be {n} booleans, got {mask.dtype} {mask.shape}"
                    )
                setattr(self, name, mask)
        for name in ("latency_candidate_reps", "latency_baseline_reps"):
            setattr(self, name, _repetitions(name, getattr(self, name), n))
        for name in ("latency_candidate_ms", "latency_baseline_ms"):
            value = getattr(self, name)
            if value is not None and np.any(value < 0):
                raise InvalidInputError(f"{name}: latencies must be non-negative")
        if self.jaccard is not None and (self.jaccard.min() < 0 or self.jaccard.max() > 1):
            raise InvalidInputError("jaccard must lie in [0, 1]")
        if self.router_confidence is not None and (
            self.router_confidence.min() < 0 or self.router_confidence.max() > 1
        ):
            raise InvalidInputError("router_confidence must lie in [0, 1]")

    def subset(self, rows: npt.ArrayLike) -> CandidateEvidence:
        """The same evidence restricted to `rows` (every per-query array, given or not)."""
        idx = np.asarray(rows)
        columns: dict[str, Any] = {
            name: None if value is None else np.asarray(value)[idx]
            for name, value in self.__dict__.items()
        }
        return CandidateEvidence(**columns)

    def split(self, seed: int = 0) -> tuple[CandidateEvidence, CandidateEvidence]:
        """Two disjoint halves of the queries (seeded): one to calibrate on, one to measure on."""
        order = np.random.default_rng(seed).permutation(len(self.ndcg_candidate))
        half = len(order) // 2
        return self.subset(np.sort(order[:half])), self.subset(np.sort(order[half:]))

    def require(self, name: str) -> npt.NDArray[Any]:
        """The named optional array, for consumers (monitoring replay) that cannot do without it."""
        value = getattr(self, name)
        if value is None:
            raise InvalidInputError(f"evidence.{name} is required here but was not given")
        return np.asarray(value)


@dataclass
class GuardResult:
    name: str
    value: float  # NaN when not evaluated
    threshold: float
    comparison: str  # ">=", ">" or "<=": the rule a passing value satisfies
    passed: bool
    detail: str = ""
    status: str = PASSED  # "passed", "failed" or "not_evaluated"
    interval: tuple[float, float] | None = None
    n: int = 0


@dataclass
class ContractResult:
    verdict: str  # "AUTHORISED" or "BLOCKED"
    guards: list[GuardResult]
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def authorised(self) -> bool:
        return self.verdict == "AUTHORISED"


def _decided(
    name: str,
    value: float,
    threshold: float,
    comparison: str,
    failed: bool,
    detail: str,
    *,
    interval: tuple[float, float] | None = None,
    n: int = 0,
) -> GuardResult:
    status = FAILED if failed else PASSED
    return GuardResult(
        name, float(value), float(threshold), comparison, not failed, detail, status, interval, n
    )


def not_evaluated(name: str, threshold: float, comparison: str, reason: str) -> GuardResult:
    return GuardResult(name, math.nan, float(threshold), comparison, False, reason, NOT_EVALUATED)


def decide(guards: list[GuardResult]) -> str:
    """AUTHORISED iff every required guard was evaluated and no evaluated guard failed."""
    by_name = {g.name: g for g in guards}
    required_ok = all(
        name in by_name and by_name[name].status != NOT_EVALUATED for name in REQUIRED_GUARDS
    )
    no_failure = all(g.status != FAILED for g in guards)
    return "AUTHORISED" if required_ok and no_failure else "BLOCKED"


def noninferiority_guard(
    name: str, diffs: npt.NDArray[np.float64], g: ProductionGuards, *, margin: float, strict: bool
) -> GuardResult:
    """LCB of the mean paired difference against −margin (strict `>` for the global guard)."""
    ci = paired_bca_interval(diffs, confidence=g.confidence, n_resamples=g.n_resamples, seed=g.seed)
    test = "superiority (δ = 0)" if margin == 0 else f"non-inferiority, margin δ = {margin:g}"
    failed = not (ci.low > -margin if strict else ci.low >= -margin)
    return _decided(
        name,
        ci.low,
        -margin,
        ">" if strict else ">=",
        failed,
        f"{test}: mean {ci.mean:+.5f}, {g.confidence:.0%} {ci.method} "
        f"[{ci.low:+.5f}, {ci.high:+.5f}], n={ci.n}",
        interval=(ci.low, ci.high),
        n=ci.n,
    )


def hard_nl_guard(ev: CandidateEvidence, g: ProductionGuards) -> GuardResult:
    name, threshold = "noninferiority_hard_nl", -g.hard_nl_margin
    if ev.hard_nl is None:
        return not_evaluated(name, threshold, ">=", "no hard-NL slice given (no queries file)")
    n_hard = int(ev.hard_nl.sum())
    routed = ev.routed if ev.routed is not None else np.ones(len(ev.hard_nl), dtype=bool)
    n_routed = int((ev.hard_nl & routed).sum())
    if n_hard < g.min_hard_nl_queries or n_routed < g.min_hard_nl_routed:
        return not_evaluated(
            name,
            threshold,
            ">=",
            f"{n_hard} hard-NL queries, {n_routed} of them routed to T1; needs >= "
            f"{g.min_hard_nl_queries} and >= {g.min_hard_nl_routed}",
        )
    diffs = (ev.ndcg_candidate - ev.ndcg_baseline)[ev.hard_nl]
    result = noninferiority_guard(name, diffs, g, margin=g.hard_nl_margin, strict=False)
    result.detail += f", {n_routed} routed to T1"
    return result


def jaccard_guard(ev: CandidateEvidence, g: ProductionGuards) -> GuardResult:
    name = "jaccard_at_10_routed"
    if ev.jaccard is None:
        return not_evaluated(name, g.jaccard_min, ">=", "no exact-search reference ranking given")
    routed = ev.routed if ev.routed is not None else np.ones(len(ev.jaccard), dtype=bool)
    n = int(routed.sum())
    if n < g.min_routed_for_jaccard:
        return not_evaluated(
            name,
            g.jaccard_min,
            ">=",
            f"only {n} queries routed to T1; needs >= {g.min_routed_for_jaccard}",
        )
    value = float(ev.jaccard[routed].mean())
    return _decided(
        name,
        value,
        g.jaccard_min,
        ">=",
        value < g.jaccard_min,
        f"mean Jaccard@10 (T1 vs exact search) over the {n} queries routed to T1",
        n=n,
    )


@dataclass(frozen=True)
class DriftTest:
    raw: float  # AECE(current) − AECE(reference)
    corrected: float  # raw minus the permutation null's mean (the small-sample bias at these sizes)
    p_value: float


def aece_drift_test(
    ref_conf: npt.NDArray[np.float64],
    ref_benefit: npt.NDArray[np.float64],
    cur_conf: npt.NDArray[np.float64],
    cur_benefit: npt.NDArray[np.float64],
    *,
    bins: int,
    permutations: int,
    seed: int,
) -> DriftTest:
    """Permutation test of "no drift": the two windows are exchangeable, so AECE differences of
    random splits of the pooled rows (same two sizes) are the null, with its size bias included."""
    conf = np.concatenate([ref_conf, cur_conf])
    benefit = np.concatenate([ref_benefit, cur_benefit])
    n_ref = len(ref_conf)
    raw = _aece(cur_conf, cur_benefit, bins) - _aece(ref_conf, ref_benefit, bins)
    rng = np.random.default_rng(seed)
    null = np.empty(permutations)
    for i in range(permutations):
        order = rng.permutation(len(conf))
        a, b = order[:n_ref], order[n_ref:]
        null[i] = _aece(conf[b], benefit[b], bins) - _aece(conf[a], benefit[a], bins)
    p_value = (1.0 + float(np.sum(null >= raw))) / (permutations + 1.0)
    return DriftTest(float(raw), float(raw - null.mean()), p_value)


def aece_guard(
    baseline: BaselineMetrics, ev: CandidateEvidence, g: ProductionGuards
) -> GuardResult:
    name = "aece_drift"
    ref_c, ref_b = baseline.reference_confidence, baseline.reference_benefit
    cur_c, cur_b = ev.router_confidence, ev.realised_benefit
    if ref_c is None or ref_b is None or cur_c is None or cur_b is None:
        return not_evaluated(
            name,
            g.aece_drift_max,
            "<=",
            "no router confidence for a reference and a current window",
        )
    if ev.current_window is not None:
        cur_c, cur_b = cur_c[ev.current_window], cur_b[ev.current_window]
    n_ref, n_cur = len(ref_c), len(cur_c)
    if min(n_ref, n_cur) < g.min_aece_queries:
        return not_evaluated(
            name,
            g.aece_drift_max,
            "<=",
            f"windows of {n_ref} and {n_cur} queries; needs >= {g.min_aece_queries} each",
        )
    t = aece_drift_test(
        np.clip(ref_c, 0, 1),
        ref_b,
        np.clip(cur_c, 0, 1),
        cur_b,
        bins=g.aece_bins,
        permutations=g.aece_permutations,
        seed=g.seed,
    )
    failed = t.corrected > g.aece_drift_max and t.p_value < g.aece_alpha
    return _decided(
        name,
        t.corrected,
        g.aece_drift_max,
        "<=",
        failed,
        f"bias-corrected AECE increase (raw {t.raw:+.4f}), permutation p={t.p_value:.3f} "
        f"(fails only if p < {g.aece_alpha:g}); reference n={n_ref}, current n={n_cur}",
        n=n_cur,
    )


def _reps(single: npt.NDArray[np.float64] | None, reps: npt.NDArray[np.float64] | None) -> Any:
    if reps is not None:
        return reps
    return None if single is None else single[:, None]


def latency_interval(
    candidate: npt.NDArray[np.float64],
    baseline: npt.NDArray[np.float64],
    q: float,
    *,
    relative: bool,
    confidence: float,
    n_resamples: int,
    seed: int,
) -> tuple[float, float, float]:
    """Point value and percentile-bootstrap interval of p_q(candidate) / p_q(T0) (or of p_q itself).

    A query's latency is the median of its repeated measurements, so a scheduler preemption that
    hits one repetition (machine load, not the ranker) does not become tail latency; the
    percentile is over queries, and the bootstrap resamples queries (the same rows for both arms,
    so an unchanged query stays unchanged). Resampling the repetitions as well would not do: the
    median of three draws from three measurements lands on a preempted one a quarter of the time.
    """
    cand_med = np.nanmedian(candidate, axis=1)
    base_med = np.nanmedian(baseline, axis=1)
    n = len(cand_med)
    rng = np.random.default_rng(seed)
    stats_: list[npt.NDArray[np.float64]] = []
    for start in range(0, n_resamples, 200):  # chunks bound the (resamples × queries) arrays
        idx = rng.integers(0, n, size=(min(200, n_resamples - start), n))
        cand_q = np.percentile(cand_med[idx], q, axis=1)
        if relative:
            base_q = np.percentile(base_med[idx], q, axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                stats_.append(np.where(base_q > 0, cand_q / base_q, np.inf))
        else:
            stats_.append(cand_q)
    stat = np.concatenate(stats_)
    point_c = float(np.percentile(cand_med, q))
    point_b = float(np.percentile(base_med, q))
    point = (point_c / point_b if point_b > 0 else math.inf) if relative else point_c
    alpha = (1.0 - confidence) / 2.0
    return point, float(np.quantile(stat, alpha)), float(np.quantile(stat, 1.0 - alpha))


def latency_guards(ev: CandidateEvidence, g: ProductionGuards) -> list[GuardResult]:
    cand = _reps(ev.latency_candidate_ms, ev.latency_candidate_reps)
    base = _reps(ev.latency_baseline_ms, ev.latency_baseline_reps)
    specs: list[tuple[str, float, float, bool, int]] = [
        ("p95_ratio_vs_t0", 95.0, g.slo_p95_ratio, True, g.min_latency_queries),
        ("p99_ratio_vs_t0", 99.0, g.slo_p99_ratio, True, g.min_p99_queries),
    ]
    if g.slo_p95_ms is not None:
        specs.append(("p95_latency_ms", 95.0, g.slo_p95_ms, False, g.min_latency_queries))
    out = []
    for name, q, slo, relative, min_n in specs:
        if cand is None or base is None:
            out.append(not_evaluated(name, slo, "<=", "no latency measurements given"))
            continue
        if len(cand) < min_n:
            out.append(not_evaluated(name, slo, "<=", f"{len(cand)} queries; needs >= {min_n}"))
            continue
        point, low, high = latency_interval(
            cand,
            base,
            q,
            relative=relative,
            confidence=g.confidence,
            n_resamples=g.n_resamples,
            seed=g.seed,
        )
        reps = int(np.median(np.sum(np.isfinite(cand), axis=1)))
        what = "candidate / T0 measured in the same run" if relative else "candidate, ms"
        out.append(
            _decided(
                name,
                point,
                slo,
                "<=",
                low > slo,
                f"p{q:g} {what}: {g.confidence:.0%} bootstrap [{low:.4f}, {high:.4f}] over "
                f"{len(cand)} queries x {reps} repeats (median); fails only if the lower "
                "bound exceeds the SLO",
                interval=(low, high),
                n=len(cand),
            )
        )
    return out


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
        guards = [
            noninferiority_guard(
                "noninferiority_global", diffs, g, margin=g.noninferiority_margin, strict=True
            ),
            hard_nl_guard(candidate, g),
            *latency_guards(candidate, g),
            jaccard_guard(candidate, g),
            aece_guard(self.baseline, candidate, g),
        ]
        routed = candidate.routed
        self.result = ContractResult(
            decide(guards),
            guards,
            {
                "ndcg_candidate": float(candidate.ndcg_candidate.mean()),
                "ndcg_baseline": float(candidate.ndcg_baseline.mean()),
                "delta_ndcg": float(diffs.mean()),
                "n_queries": len(diffs),
                "n_hard_nl": None if candidate.hard_nl is None else int(candidate.hard_nl.sum()),
                "n_routed_t1": len(diffs) if routed is None else int(routed.sum()),
                "noninferiority_margin": g.noninferiority_margin,
                "required_guards": list(REQUIRED_GUARDS),
            },
        )
        return self.result

    def generate_release_contract_document(self, path: str | Path) -> Path:
        if self.result is None:
            raise NotFittedError("validate_release_contract must run first")
        r, g = self.result, self.guards
        test = (
            "superiority (δ = 0)"
            if g.noninferiority_margin == 0
            else f"non-inferiority with margin δ = {g.noninferiority_margin:g}"
        )
        lines = [
            "# T1 release contract",
            "",
            f"**Verdict: {r.verdict}**",
            "",
            "Candidate = T0 with router-gated upshift to T1;",
            "baseline = production T0 on the same queries.",
            f"Queries: {r.summary['n_queries']} (hard-NL: {r.summary['n_hard_nl']}, "
            f"routed to T1: {r.summary['n_routed_t1']}).",
            f"nDCG@10: candidate {r.summary['ndcg_candidate']:.4f}, "
            f"T0 {r.summary['ndcg_baseline']:.4f}, "
            f"Δ {r.summary['delta_ndcg'] * 100:+.2f} pp. Quality test: {test}.",
            "",
            "## Guards",
            "",
            "| guard | status | value | passes if | detail |",
            "| --- | --- | --- | --- | --- |",
        ]
        for x in r.guards:
            value = "—" if x.status == NOT_EVALUATED else f"{x.value:.5f}"
            status = {PASSED: "passed", FAILED: "**FAILED**", NOT_EVALUATED: "not evaluated"}
            lines.append(
                f"| {x.name} | {status[x.status]} | {value} | {x.comparison} {x.threshold:g} | "
                f"{x.detail} |"
            )
        lines += [
            "",
            "## Method",
            "",
            f"- Verdict: AUTHORISED only when {', '.join(REQUIRED_GUARDS)} was evaluated and every "
            "guard that could be evaluated passed; 'not evaluated' never counts as passed.",
            f"- Quality: two-sided {g.confidence:.0%} BCa bootstrap ({g.n_resamples} resamples of "
            f"queries) of the mean paired ΔnDCG@10; the lower bound must exceed "
            f"−δ = {-g.noninferiority_margin:g} ({test}); on the hard-NL slice ≥ "
            f"−δ_hard = {-g.hard_nl_margin:g} (non-inferiority margin of the slice).",
            "- nDCG@10: trec_eval's ndcg_cut_10 (graded linear gains, ideal DCG from the qrels).",
            "- Latency: candidate percentiles relative to T0 measured in the same run; bootstrap "
            "over queries and repeated measurements; a guard fails only when the interval's lower "
            "bound exceeds its SLO.",
            f"- AECE drift: {g.aece_bins} equal-mass bins; permutation test ({g.aece_permutations} "
            f"permutations) at α = {g.aece_alpha:g}, bias-corrected for the window sizes.",
            "- Jaccard@10: over the queries routed to T1 only.",
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
    margin: float = 0.0,
    seed: int = 0,
) -> OperatingCharacteristics:
    """Pass rate of the global guard when the true Δ is −δ (the null), and its power at Δ = `effect`.

    Synthetic evaluations resample `n_queries` measured per-query differences with random signs
    (a null with the real spread whose zeros stay zeros: subtracting the mean instead would give
    every unchanged query a tiny constant "improvement"), then shift them for the power run.
    """
    diffs = check_array("differences", differences, min_len=10)
    n_queries = check_int("n_queries", n_queries, low=10, high=10**6)
    check_number("effect", effect, low=-1, high=1)
    check_number("margin", margin, low=0, high=1)
    n_simulations = check_int("n_simulations", n_simulations, low=10, high=10**5)
    rng = np.random.default_rng(seed)
    rates = []
    for shift in (-margin, effect):
        passes = 0
        for i in range(n_simulations):
            sample = rng.choice(diffs, size=n_queries) * rng.choice([-1.0, 1.0], size=n_queries)
            sample = sample + shift
            ci = paired_bca_interval(
                sample, confidence=confidence, n_resamples=n_resamples, seed=seed + i
            )
            passes += int(ci.low > -margin)  # the global guard's rule
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
