"""nDCG against trec_eval, BCa intervals, Jaccard, AECE, Kish ESS and PSIS k̂."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from t1_deploy.errors import InvalidInputError
from t1_deploy.stats import (
    adaptive_ece,
    jaccard_at_k,
    kish_ess,
    ndcg_at_k,
    paired_bca_interval,
    psis_khat,
)


def test_ndcg_matches_trec_eval_ndcg_cut_10() -> None:
    pytrec_eval = pytest.importorskip("pytrec_eval")
    rng = np.random.default_rng(0)
    qrels, run, ours = {}, {}, {}
    for q in range(60):
        relevant = int(rng.integers(0, 30))
        ranking = rng.permutation(30)[:15].tolist()
        qrels[f"q{q}"] = {f"d{relevant}": 1}
        run[f"q{q}"] = {f"d{d}": float(100 - i) for i, d in enumerate(ranking)}
        ours[f"q{q}"] = ndcg_at_k(ranking, relevant)
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut"})
    theirs = evaluator.evaluate(run)
    for q, value in ours.items():
        assert value == pytest.approx(theirs[q]["ndcg_cut_10"], abs=1e-12)


def test_ndcg_textbook_values() -> None:
    assert ndcg_at_k([5, 1, 2], 5) == 1.0
    assert ndcg_at_k([1, 5], 5) == pytest.approx(1 / math.log2(3))
    assert ndcg_at_k(list(range(20)), 15) == 0.0


@given(st.lists(st.integers(0, 30), max_size=12), st.lists(st.integers(0, 30), max_size=12))
def test_jaccard_is_a_similarity(a: list[int], b: list[int]) -> None:
    j = jaccard_at_k(a, b)
    assert 0.0 <= j <= 1.0
    assert j == jaccard_at_k(b, a)
    assert jaccard_at_k(a, a) == 1.0


def test_bca_degenerate_differences_collapse() -> None:
    ci = paired_bca_interval(np.zeros(50))
    assert (ci.low, ci.mean, ci.high, ci.method) == (0.0, 0.0, 0.0, "degenerate")


def test_bca_interval_covers_true_mean_at_nominal_rate() -> None:
    rng = np.random.default_rng(3)
    hits = 0
    for i in range(60):
        ci = paired_bca_interval(rng.normal(0.3, 1.0, 80), n_resamples=500, seed=i)
        hits += ci.low <= 0.3 <= ci.high
    assert hits >= 52  # 95 % nominal; binomial(60, 0.95) is >= 52 with probability > 0.99


@pytest.mark.parametrize("bad", [[], [1.0], [1.0, math.nan], "abc", [True, False], None])
def test_bca_rejects_bad_input(bad: object) -> None:
    with pytest.raises(InvalidInputError):
        paired_bca_interval(bad)  # type: ignore[arg-type]


def test_aece_perfect_calibration_is_small_and_miscalibration_large() -> None:
    rng = np.random.default_rng(0)
    conf = rng.random(20000)
    outcome = (rng.random(20000) < conf).astype(float)
    assert adaptive_ece(conf, outcome) < 0.02
    assert adaptive_ece(conf**0.3, outcome) > 0.15


def test_aece_rejects_out_of_range_confidence() -> None:
    with pytest.raises(InvalidInputError):
        adaptive_ece([1.5, 0.2], [1, 0])
    with pytest.raises(InvalidInputError):
        adaptive_ece([0.5, 0.2], [1])


@settings(max_examples=60)
@given(st.lists(st.floats(0.01, 1000.0), min_size=1, max_size=200))
def test_kish_ess_between_one_and_n(weights: list[float]) -> None:
    ess = kish_ess(weights)
    assert 1.0 - 1e-9 <= ess <= len(weights) + 1e-9


@pytest.mark.parametrize("shape", [0.3, 0.7, 1.2])
def test_psis_khat_recovers_pareto_tail_shape(shape: float) -> None:
    rng = np.random.default_rng(7)
    # Pareto(α) draws have generalized-Pareto tail shape ξ = 1/α.
    weights = (1 - rng.random(20000)) ** (-shape)
    assert psis_khat(weights) == pytest.approx(shape, abs=0.12)


def test_psis_khat_rejects_non_positive_weights() -> None:
    with pytest.raises(InvalidInputError):
        psis_khat([1.0, 0.0, 2.0, 3.0, 4.0, 5.0])
