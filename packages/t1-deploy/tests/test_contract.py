"""Release contract: each guard fails on a planted defect, passes on clean data, and says
"not evaluated" (never "passed") when its data is missing or too small."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from t1_deploy.contract import (
    BaselineMetrics,
    CandidateEvidence,
    GuardResult,
    ProductionGuards,
    T1ReleaseContract,
    aece_drift_test,
    decide,
    queries_for_power,
    simulate_operating_characteristics,
)
from t1_deploy.errors import ConfigError, InvalidInputError, NotFittedError

N = 600
GUARDS = ProductionGuards(n_resamples=500, aece_permutations=199)


def _evidence(
    rng: np.random.Generator, n: int = N, effect: float = 0.0, **overrides: object
) -> CandidateEvidence:
    """Clean evidence: 30 % routed to T1, calibrated router, equal latency distributions."""
    base = rng.choice([0.0, 0.3869, 0.5, 0.6309, 1.0], size=n)
    routed = rng.random(n) < 0.3
    diff = np.where(routed, rng.choice([-0.3, 0.0, 0.3], size=n, p=[0.1, 0.8, 0.1]) + effect, 0.0)
    conf = rng.random(n)
    fields = dict(
        ndcg_candidate=base + diff,
        ndcg_baseline=base,
        latency_candidate_ms=rng.gamma(4.0, 0.1, n) + 0.1,
        latency_baseline_ms=rng.gamma(4.0, 0.1, n) + 0.1,
        hard_nl=rng.random(n) < 0.4,
        jaccard=np.full(n, 0.95),
        router_confidence=conf,
        realised_benefit=(rng.random(n) < conf).astype(float),
        routed=routed,
    )
    fields.update(overrides)
    return CandidateEvidence(**fields)  # type: ignore[arg-type]


def _baseline(rng: np.random.Generator, n_ref: int = 900) -> BaselineMetrics:
    conf = rng.random(n_ref)
    return BaselineMetrics(
        ndcg=0.4,
        p95_ms=1.0,
        aece_reference=0.02,
        n_queries=N,
        reference_confidence=conf,
        reference_benefit=(rng.random(n_ref) < conf).astype(float),
    )


def _guards(
    ev: CandidateEvidence, rng: np.random.Generator, guards: ProductionGuards = GUARDS
) -> dict[str, GuardResult]:
    result = T1ReleaseContract(_baseline(rng), guards).validate_release_contract(ev)
    return {g.name: g for g in result.guards}


def test_clean_improvement_passes_every_guard_and_is_documented(
    rng: np.random.Generator, tmp_path: Path
) -> None:
    contract = T1ReleaseContract(_baseline(rng), GUARDS)
    result = contract.validate_release_contract(_evidence(rng, effect=0.1))
    assert result.authorised, [g for g in result.guards if g.status != "passed"]
    assert {g.status for g in result.guards} == {"passed"}
    doc = contract.generate_release_contract_document(tmp_path / "c.md").read_text()
    assert "**Verdict: AUTHORISED**" in doc
    assert "superiority (δ = 0)" in doc


def test_global_guard_fails_on_regression_and_on_no_change(rng: np.random.Generator) -> None:
    assert _guards(_evidence(rng, effect=-0.05), rng)["noninferiority_global"].status == "failed"
    ev = _evidence(rng)
    same = CandidateEvidence(**{**ev.__dict__, "ndcg_candidate": ev.ndcg_baseline.copy()})
    g = _guards(same, rng)["noninferiority_global"]
    assert (g.status, g.value, g.threshold) == ("failed", 0.0, 0.0)
    assert "degenerate" in g.detail
    assert "superiority" in g.detail
    margin = ProductionGuards(noninferiority_margin=0.01, n_resamples=500, aece_permutations=199)
    g = _guards(same, rng, margin)["noninferiority_global"]
    assert (g.status, g.threshold) == ("passed", -0.01)
    assert "non-inferiority, margin δ = 0.01" in g.detail


def test_hard_nl_guard_fails_on_slice_regression_and_is_not_vacuous(
    rng: np.random.Generator,
) -> None:
    ev = _evidence(rng, effect=0.1)
    assert _guards(ev, rng)["noninferiority_hard_nl"].status == "passed"
    hurt = ev.ndcg_candidate - np.where(ev.hard_nl & ev.routed, 0.3, 0.0)  # type: ignore[operator]
    bad = CandidateEvidence(**{**ev.__dict__, "ndcg_candidate": hurt})
    assert _guards(bad, rng)["noninferiority_hard_nl"].status == "failed"
    # Hard-NL queries exist but none reached T1: nothing about T1 on the slice is known.
    unrouted = CandidateEvidence(**{**ev.__dict__, "routed": ev.routed & ~ev.hard_nl})  # type: ignore[operator]
    g = _guards(unrouted, rng)["noninferiority_hard_nl"]
    assert g.status == "not_evaluated"
    assert not g.passed
    assert "0 of them routed" in g.detail
    few = CandidateEvidence(**{**ev.__dict__, "hard_nl": np.arange(N) < 5})
    assert _guards(few, rng)["noninferiority_hard_nl"].status == "not_evaluated"


def test_jaccard_guard_reads_routed_queries_only(rng: np.random.Generator) -> None:
    """3 % routed with a garbage index: padding the other 97 % with 1.0 would hide it."""
    routed = np.arange(N) < 18
    garbage = np.where(routed, 0.2, 1.0)
    ev = _evidence(rng, effect=0.1, routed=routed, jaccard=garbage)
    g = _guards(ev, rng)["jaccard_at_10_routed"]
    assert g.status == "failed"
    assert g.value == pytest.approx(0.2)
    assert g.n == 18
    clean = _evidence(rng, effect=0.1, routed=routed, jaccard=np.where(routed, 0.9, 0.0))
    assert _guards(clean, rng)["jaccard_at_10_routed"].status == "passed"
    few = _evidence(rng, routed=np.arange(N) < 3)
    assert _guards(few, rng)["jaccard_at_10_routed"].status == "not_evaluated"
    missing = _evidence(rng, jaccard=None)
    assert _guards(missing, rng)["jaccard_at_10_routed"].status == "not_evaluated"


def test_aece_drift_guard_fails_on_drift_not_on_unequal_sizes(rng: np.random.Generator) -> None:
    """Perfectly calibrated router, no drift, windows of 1521 and 1014: the raw difference is
    biased by the sizes; the permutation test's false-fail rate stays at its α."""
    fails = 0
    for seed in range(40):
        r = np.random.default_rng(seed)
        c1, c2 = r.random(1521), r.random(1014)
        t = aece_drift_test(
            c1,
            (r.random(1521) < c1).astype(float),
            c2,
            (r.random(1014) < c2).astype(float),
            bins=10,
            permutations=199,
            seed=seed,
        )
        fails += t.corrected > 0.01 and t.p_value < 0.05
    assert fails <= 5  # α = 5 %: expected 2 of 40; binomial 99th percentile is 6
    ev = _evidence(rng, effect=0.1)
    assert _guards(ev, rng)["aece_drift"].status == "passed"
    drifted = CandidateEvidence(
        **{**ev.__dict__, "router_confidence": ev.router_confidence**0.3}  # type: ignore[operator]
    )
    g = _guards(drifted, rng)["aece_drift"]
    assert g.status == "failed"
    assert g.value > 0.05
    no_ref = T1ReleaseContract(BaselineMetrics(0.4, 1.0, 0.02, N), GUARDS)
    g = {x.name: x for x in no_ref.validate_release_contract(ev).guards}["aece_drift"]
    assert g.status == "not_evaluated"


def test_latency_guards_relative_to_t0_with_repeats(rng: np.random.Generator) -> None:
    ev = _evidence(rng, effect=0.1)
    assert _guards(ev, rng)["p95_ratio_vs_t0"].status == "passed"
    # Machine load slows both arms 3x in the same run: a relative SLO is unaffected.
    loaded = CandidateEvidence(
        **{
            **ev.__dict__,
            "latency_candidate_ms": ev.latency_candidate_ms * 3,  # type: ignore[operator]
            "latency_baseline_ms": ev.latency_baseline_ms * 3,  # type: ignore[operator]
        }
    )
    assert {g.status for n, g in _guards(loaded, rng).items() if "ratio" in n} == {"passed"}
    slow = _evidence(rng, effect=0.1, latency_candidate_ms=rng.gamma(4.0, 0.1, N) * 3 + 0.3)
    guards = _guards(slow, rng)
    assert guards["p95_ratio_vs_t0"].status == "failed"
    assert guards["p95_ratio_vs_t0"].interval[0] > 2.0  # type: ignore[index]
    reps_base = rng.gamma(4.0, 0.1, (N, 5)) + 0.1
    reps = _evidence(
        rng,
        effect=0.1,
        latency_baseline_reps=reps_base,
        latency_candidate_reps=reps_base * np.where(rng.random((N, 1)) < 0.3, 1.05, 1.0),
    )
    assert _guards(reps, rng)["p95_ratio_vs_t0"].status == "passed"
    absolute = ProductionGuards(slo_p95_ms=0.1, n_resamples=500, aece_permutations=199)
    assert _guards(ev, rng, absolute)["p95_latency_ms"].status == "failed"
    none = _evidence(rng, latency_candidate_ms=None, latency_baseline_ms=None)
    assert _guards(none, rng)["p95_ratio_vs_t0"].status == "not_evaluated"
    small = _evidence(rng, n=50)
    statuses = _guards(small, rng)
    assert statuses["p99_ratio_vs_t0"].status == "not_evaluated"


def test_verdict_needs_the_quality_guard_and_no_failure() -> None:
    def g(name: str, status: str) -> GuardResult:
        return GuardResult(name, 0.0, 0.0, ">", status == "passed", "", status)

    assert decide([g("noninferiority_global", "passed"), g("aece_drift", "not_evaluated")]) == (
        "AUTHORISED"
    )
    assert decide([g("noninferiority_global", "not_evaluated")]) == "BLOCKED"
    assert decide([g("aece_drift", "passed")]) == "BLOCKED"
    assert decide([g("noninferiority_global", "passed"), g("p95_ratio_vs_t0", "failed")]) == (
        "BLOCKED"
    )


def test_null_pass_rate_and_power() -> None:
    rng = np.random.default_rng(11)
    diffs = rng.choice([-0.37, 0.0, 0.37], size=2000, p=[0.06, 0.88, 0.06])
    n = queries_for_power(diffs, effect=0.01, power=0.8)
    oc = simulate_operating_characteristics(
        diffs, n_queries=n, effect=0.01, n_simulations=120, seed=2
    )
    assert oc.pass_rate_null <= 0.05
    assert oc.power_at_effect >= 0.70  # 80 % target by the normal approximation; 120 simulations


def test_bad_inputs() -> None:
    with pytest.raises(InvalidInputError):
        T1ReleaseContract({"ndcg": 0.3})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="jaccard_min"):
        ProductionGuards(jaccard_min=2.0)
    with pytest.raises(ConfigError, match="slo_p95_ratio"):
        ProductionGuards(slo_p95_ratio=float("nan"))
    with pytest.raises(ConfigError, match="noninferiority_margin"):
        ProductionGuards(noninferiority_margin=-0.01)
    rng = np.random.default_rng(0)
    contract = T1ReleaseContract(_baseline(rng))
    with pytest.raises(NotFittedError):
        contract.generate_release_contract_document(Path("unused.md"))
    with pytest.raises(InvalidInputError):
        contract.validate_release_contract("evidence")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="non-negative"):
        _evidence(rng, latency_candidate_ms=-np.ones(N))
    with pytest.raises(InvalidInputError, match="same length"):
        _evidence(rng, jaccard=np.ones(5))
    with pytest.raises(InvalidInputError, match="routed"):
        _evidence(rng, routed=np.ones(N))
    reps = np.ones((N, 3))
    reps[0, 1] = np.nan
    with pytest.raises(InvalidInputError, match="trailing padding"):
        _evidence(rng, latency_candidate_reps=reps, latency_baseline_reps=np.ones((N, 3)))
    with pytest.raises(InvalidInputError, match="ndcg_candidate"):
        _evidence(rng, ndcg_candidate=np.full(N, np.nan))
