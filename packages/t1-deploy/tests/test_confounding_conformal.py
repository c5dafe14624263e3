"""Confounding resolution on data with a known effect; Mondrian split-conformal coverage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from t1_deploy.conformal import MondrianConformal, conformal_quantile
from t1_deploy.confounding import (
    ConfoundingResolutionConfig,
    ConfoundingResolver,
    Observations,
    log_router_decisions,
)
from t1_deploy.errors import ConfigError, InvalidInputError, NotFittedError


def _confounded(n: int, effect: float, seed: int) -> Observations:
    """Hard queries (high entropy) get upshifted more and score lower: naive Δ is biased."""
    rng = np.random.default_rng(seed)
    entropy = rng.random(n)
    length = rng.integers(3, 20, n).astype(float)
    nl = rng.choice([0.5, 0.8, 1.0], n)
    features = np.column_stack([entropy, length, nl, rng.random(n) * 0.2])
    score = 2.0 * entropy + 0.05 * length
    p = 1 / (1 + np.exp(-(score - score.mean()) / score.std()))
    t = (rng.random(n) < p).astype(float)
    y0 = np.clip(0.8 - 0.6 * entropy + rng.normal(0, 0.15, n), 0, 1)
    y = y0 + effect * t
    return Observations(
        features,
        nl,
        length,
        rng.choice(["os", "json", "email"], n),
        t,
        y,
        y0,
        router_score=score,
        oracle_effect=effect,
    )


def test_router_logs_its_own_epsilon_greedy_decisions_with_exact_propensities() -> None:
    """The audit uses the propensities the router logged, not a model of them, and the IPW
    effect recovers the effect known from both measured arms."""
    rng = np.random.default_rng(5)
    n = 4000
    scores = rng.random(n)
    length = rng.integers(3, 20, n).astype(float)
    nl = rng.choice([0.5, 0.8, 1.0], n)
    features = np.column_stack([scores, length, nl, rng.random(n) * 0.2])
    y0 = np.clip(0.8 - 0.6 * scores + rng.normal(0, 0.1, n), 0, 1)
    y1 = y0 + 0.05 + 0.1 * (scores >= 0.8)
    obs = log_router_decisions(
        features,
        scores,
        y0,
        y1,
        nl,
        length,
        rng.choice(["os", "json"], n),
        theta=0.8,
        epsilon=0.2,
        seed=1,
    )
    assert obs.logged_propensity is not None
    np.testing.assert_array_equal(obs.logged_propensity, np.where(scores >= 0.8, 0.9, 0.1))
    explored = obs.treatment[scores < 0.8].mean()
    assert explored == pytest.approx(0.1, abs=0.02)  # ε/2 of the greedy "stay" decisions flip
    resolver = ConfoundingResolver(
        ConfoundingResolutionConfig(n_permutations=100, power_simulations=10, power_permutations=50)
    )
    report = resolver.resolve_confounding(obs)
    assert report.propensity_source == "logged"
    assert obs.oracle_effect == pytest.approx(0.07, abs=0.01)
    assert report.adjusted_effect == pytest.approx(obs.oracle_effect, abs=0.02)
    assert report.naive_effect < report.adjusted_effect - 0.1  # the raw difference is confounded
    with pytest.raises(InvalidInputError, match="logged_propensity"):
        Observations(**{**obs.__dict__, "logged_propensity": np.ones(n)})


def test_adjustment_removes_confounding_and_negative_controls_pass(tmp_path: Path) -> None:
    obs = _confounded(3000, 0.05, seed=1)
    resolver = ConfoundingResolver(
        ConfoundingResolutionConfig(
            n_permutations=200, power_simulations=12, power_permutations=60, power_effect=0.05
        )
    )
    report = resolver.resolve_confounding(obs)
    assert report.naive_effect < 0  # confounded: the raw difference even has the wrong sign
    assert report.adjusted_effect == pytest.approx(0.05, abs=0.03)
    assert report.effect_p_value < 0.05
    assert report.placebo_outcome["p_value"] > 0.05
    assert report.placebo_treatment["p_value"] > 0.05
    assert report.naive_placebo_outcome_p_value < 0.05  # the unadjusted placebo test flags the bias
    assert report.placebo_outcome["power"] >= 0.8
    assert report.min_ess_ratio >= 0.2
    assert report.khat < 0.5
    text = resolver.export_audit_csv(tmp_path / "audit.csv").read_text()
    assert text.startswith("check,estimate,p_value,power,threshold,passed,detail")


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 1000))
def test_within_stratum_permutation_keeps_stratum_treatment_counts(seed: int) -> None:
    rng = np.random.default_rng(seed)
    strata = rng.integers(0, 5, 60)
    t = (rng.random(60) < 0.4).astype(float)
    perms = ConfoundingResolver()._permute(t, strata, 7, rng)
    for row in perms:
        for s in range(5):
            assert row[strata == s].sum() == t[strata == s].sum()


def test_confounding_bad_inputs() -> None:
    with pytest.raises(ConfigError):
        ConfoundingResolutionConfig(stratification_vars=("zodiac",))
    with pytest.raises(InvalidInputError):
        ConfoundingResolver().resolve_confounding({"t": [1]})  # type: ignore[arg-type]
    obs = _confounded(100, 0.0, 0)
    with pytest.raises(InvalidInputError):
        Observations(
            obs.features,
            obs.nl_confidence,
            obs.query_length,
            obs.language,
            np.zeros(100),
            obs.outcome,
            obs.placebo_outcome,
        )
    with pytest.raises(InvalidInputError):
        Observations(
            obs.features,
            obs.nl_confidence,
            obs.query_length,
            obs.language,
            obs.treatment * 2,
            obs.outcome,
            obs.placebo_outcome,
        )


def test_mondrian_coverage_per_slice_is_near_nominal() -> None:
    rng = np.random.default_rng(5)
    n = 6000
    slices = np.where(rng.random(n) < 0.5, "hard_nl", "other")
    pred = rng.normal(0, 1, n)
    noise = np.where(slices == "hard_nl", 0.3, 1.5)  # very different spread per slice
    y = pred + rng.normal(0, 1, n) * noise
    cal, test = slice(0, 1200), slice(1200, n)
    model = MondrianConformal(0.05).fit(pred[cal], y[cal], slices[cal])
    for c in model.coverage(pred[test], y[test], slices[test]):
        assert c.n_calibration >= 500
        assert 0.93 <= c.coverage <= 0.97, c
    assert model.quantiles["other"] > 3 * model.quantiles["hard_nl"]


def test_conformal_matches_crepes_mondrian() -> None:
    crepes = pytest.importorskip("crepes")
    rng = np.random.default_rng(9)
    pred = rng.normal(0, 1, 1500)
    y = pred + rng.normal(0, 1, 1500)
    bins = (rng.random(1500) < 0.5).astype(int)
    ours = MondrianConformal(0.05).fit(pred[:1000], y[:1000], bins[:1000].astype(str))
    lo, hi = ours.interval(pred[1000:], bins[1000:].astype(str))
    theirs = crepes.ConformalRegressor().fit(residuals=y[:1000] - pred[:1000], bins=bins[:1000])
    intervals = theirs.predict_int(y_hat=pred[1000:], bins=bins[1000:], confidence=0.95)
    np.testing.assert_allclose(intervals[:, 0], lo, atol=1e-9)
    np.testing.assert_allclose(intervals[:, 1], hi, atol=1e-9)


def test_conformal_quantile_and_bad_inputs() -> None:
    assert conformal_quantile(np.arange(1.0, 19.0), 0.05) == np.inf  # n=18 is too small for 95 %
    assert conformal_quantile(np.arange(1.0, 40.0), 0.05) == 38.0
    with pytest.raises(NotFittedError):
        MondrianConformal().interval([0.0], ["a"])
    model = MondrianConformal().fit([0.0, 1.0], [0.0, 1.0], ["a", "a"])
    with pytest.raises(InvalidInputError):
        model.interval([0.0], ["b"])
    with pytest.raises(InvalidInputError):
        MondrianConformal(alpha=0.0)
