"""Release contract: non-inferiority guards and their operating characteristics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from t1_deploy.contract import (
    BaselineMetrics,
    CandidateEvidence,
    ProductionGuards,
    T1ReleaseContract,
    queries_for_power,
    simulate_operating_characteristics,
)
from t1_deploy.errors import ConfigError, InvalidInputError, NotFittedError


def _evidence(
    rng: np.random.Generator, n: int = 600, effect: float = 0.0, **overrides: object
) -> CandidateEvidence:
    base = rng.choice([0.0, 0.3869, 0.5, 0.6309, 1.0], size=n)
    diff = rng.choice([-0.3, 0.0, 0.3], size=n, p=[0.05, 0.9, 0.05]) + effect
    conf = rng.random(n)
    fields = dict(
        ndcg_candidate=base + diff,
        ndcg_baseline=base,
        latency_candidate_ms=rng.gamma(4.0, 0.1, n) + 0.1,
        latency_baseline_ms=rng.gamma(4.0, 0.1, n),
        hard_nl=rng.random(n) < 0.4,
        jaccard=np.ones(n),
        router_confidence=conf,
        realised_benefit=(rng.random(n) < conf).astype(float),
    )
    fields.update(overrides)
    return CandidateEvidence(**fields)  # type: ignore[arg-type]


def _baseline() -> BaselineMetrics:
    return BaselineMetrics(ndcg=0.4, p95_ms=1.0, aece_reference=0.02, n_queries=600)


def test_clear_improvement_is_authorised_and_documented(
    rng: np.random.Generator, tmp_path: Path
) -> None:
    contract = T1ReleaseContract(
        _baseline(), ProductionGuards(n_resamples=500, aece_drift_max=0.05)
    )
    result = contract.validate_release_contract(_evidence(rng, effect=0.03))
    assert result.authorised, [g for g in result.guards if not g.passed]
    doc = contract.generate_release_contract_document(
        tmp_path / "T1_release_contract.md"
    ).read_text()
    assert "**Verdict: AUTHORISED**" in doc
    assert "lcb_delta_ndcg_hard_nl" in doc


def test_regression_and_guard_breaches_block(rng: np.random.Generator) -> None:
    contract = T1ReleaseContract(
        _baseline(), ProductionGuards(n_resamples=500, aece_drift_max=0.05)
    )
    result = contract.validate_release_contract(_evidence(rng, effect=-0.02))
    failed = {g.name for g in result.guards if not g.passed}
    assert not result.authorised
    assert "lcb_delta_ndcg_global" in failed
    slow = _evidence(rng, effect=0.03, latency_candidate_ms=np.full(600, 200.0))
    failed = {g.name for g in contract.validate_release_contract(slow).guards if not g.passed}
    assert {"p95_latency_ms", "delta_p95_latency_ms"} <= failed
    unstable = _evidence(rng, effect=0.03, jaccard=np.full(600, 0.5))
    failed = {g.name for g in contract.validate_release_contract(unstable).guards if not g.passed}
    assert failed == {"jaccard_at_10"}


def test_candidate_identical_to_t0_is_not_an_improvement(rng: np.random.Generator) -> None:
    """Degenerate interval at 0: the strict global guard blocks, hard-NL non-inferiority holds."""
    ev = _evidence(rng)
    ev = CandidateEvidence(**{**ev.__dict__, "ndcg_candidate": ev.ndcg_baseline.copy()})
    contract = T1ReleaseContract(_baseline(), ProductionGuards(n_resamples=500))
    guards = {g.name: g for g in contract.validate_release_contract(ev).guards}
    assert guards["lcb_delta_ndcg_global"].value == 0.0
    assert not guards["lcb_delta_ndcg_global"].passed
    assert "degenerate" in guards["lcb_delta_ndcg_global"].detail
    assert guards["lcb_delta_ndcg_hard_nl"].passed


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
    with pytest.raises(ConfigError):
        ProductionGuards(jaccard_min=2.0)
    with pytest.raises(ConfigError):
        ProductionGuards(p95_max_ms=float("nan"))
    contract = T1ReleaseContract(_baseline())
    with pytest.raises(NotFittedError):
        contract.generate_release_contract_document(Path("unused.md"))
    with pytest.raises(InvalidInputError):
        contract.validate_release_contract("evidence")  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    with pytest.raises(InvalidInputError):
        _evidence(rng, latency_candidate_ms=-np.ones(600))
    with pytest.raises(InvalidInputError):
        _evidence(rng, jaccard=np.ones(5))
