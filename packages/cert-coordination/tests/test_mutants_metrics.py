"""Tests that kill the coordination metrics' surviving mutants (tools/mutate.py cert-coordination).

Ω is measured against the *best* lone agent, not the average one: a team that beats the average
agent but not the best has Ω < 0. The bootstrap must keep that definition in every replicate.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal

import pytest

from cert.coordination.errors import CoordinationInputError, MetricsUndefinedError
from cert.coordination.metrics import (
    MIN_BASELINE_MEAN,
    CoordinationMetrics,
    Interval,
    bag_of_words,
    bootstrap_intervals,
    compute_metrics,
    consensus_rate,
    cosine_similarity,
    gamma_omega,
)


def test_omega_is_against_the_best_baseline_not_the_mean() -> None:
    gamma, omega = gamma_omega([0.8, 0.8], [0.2, 0.9])
    assert omega == pytest.approx(0.8 - 0.9)  # the mean baseline (0.55) would give +0.25
    assert gamma == pytest.approx(0.8 / 0.55)


def test_bootstrap_omega_takes_each_replicate_best_baseline() -> None:
    """Baseline {0.1, 0.1, 0.9}, three draws: the best is 0.1 only when all three miss 0.9,
    P = (2/3)^3 = 29.6 %, so replicate Ω is 0.7 with 29.6 % and −0.1 with 70.4 %: the 25th
    percentile is −0.1 and the 75th is 0.7, 4.6 points inside their steps (≫ the 0.3 % standard
    error at 20 000 resamples). Replicate *means* would put the 25th percentile at 0.8 − 0.633."""
    _, omega_ci, dropped = bootstrap_intervals(
        [0.8, 0.8], [0.1, 0.1, 0.9], n_boot=20_000, level=0.5, seed=3
    )
    assert dropped == 0
    assert omega_ci.low == pytest.approx(-0.1)
    assert omega_ci.high == pytest.approx(0.7)
    assert omega_ci.level == 0.5


# The bootstrap's percentiles. Coordinated scores {0, 0, 0, 0.5, 1} (five draws) against one
# baseline score 0.5: a replicate's Ω is its coordinated mean − 0.5 and its γ that mean / 0.5.
# The mean is u/10 with u the sum of the draws in units of 0.5; its exact distribution has
# P(u ≤ 1) = 20.7 %, P(u ≤ 2) = 42.3 %, P(u ≤ 3) = 62.5 %, P(u ≤ 4) = 80.3 %. At level 0.5 the
# 25th percentile is u = 2 and the 75th u = 4, each at least 3 points away from a step (≫ the
# 0.3 % standard error at 20 000 resamples); the 16.7th / 83.3rd (a tail of (1 − level) / 3)
# would be u = 1 / u = 5, and a tail divided by 100 instead of times would give u = 0 and u ≥ 7.
STEPPED = ([0.0, 0.0, 0.0, 0.5, 1.0], [0.5])


def test_bootstrap_interval_is_the_central_percentile_range_of_the_level() -> None:
    gamma_ci, omega_ci, dropped = bootstrap_intervals(*STEPPED, n_boot=20_000, level=0.5, seed=1)
    assert dropped == 0
    assert (omega_ci.low, omega_ci.high) == (pytest.approx(0.2 - 0.5), pytest.approx(0.4 - 0.5))
    assert (gamma_ci.low, gamma_ci.high) == (pytest.approx(0.4), pytest.approx(0.8))
    assert gamma_ci.level == omega_ci.level == 0.5


def test_bootstrap_gamma_resamples_the_baseline_too() -> None:
    # Constant team, baseline {0.25, 0.75}: replicate baseline means 0.25 / 0.5 / 0.75 (25 / 50 /
    # 25 %) give γ 2 / 1 / 0.67, so the 95 % interval spans [0.67, 2], not the point γ = 1 alone.
    gamma_ci, _, _ = bootstrap_intervals([0.5, 0.5], [0.25, 0.75], n_boot=4000, seed=2)
    assert gamma_ci.low == pytest.approx(0.5 / 0.75)
    assert gamma_ci.high == pytest.approx(2.0)


def test_bootstrap_is_reproducible_from_its_seed_and_defaults() -> None:
    coord, base = [0.61, 0.72, 0.55, 0.9, 0.33, 0.8], [0.4, 0.52, 0.47, 0.6]
    assert bootstrap_intervals(coord, base, seed=5) == bootstrap_intervals(coord, base, seed=5)
    assert bootstrap_intervals(coord, base, seed=5) != bootstrap_intervals(coord, base, seed=6)
    # The documented defaults: 2000 resamples, seed 0.
    assert bootstrap_intervals(coord, base) == bootstrap_intervals(coord, base, n_boot=2000, seed=0)
    assert bootstrap_intervals(coord, base) != bootstrap_intervals(coord, base, n_boot=2001, seed=0)


def test_a_baseline_mean_at_the_threshold_is_defined() -> None:
    # MIN_BASELINE_MEAN: a mean *below* it is treated as zero; at it, γ is defined.
    gamma, _ = gamma_omega([0.5], [MIN_BASELINE_MEAN])
    assert gamma == pytest.approx(0.5 / MIN_BASELINE_MEAN)
    _, _, dropped = bootstrap_intervals([0.5, 0.5], [MIN_BASELINE_MEAN], n_boot=100)
    assert dropped == 0


def test_undefined_gamma_says_why() -> None:
    message = r"^γ is undefined: every baseline score is 0$"
    with pytest.raises(MetricsUndefinedError, match=message):
        gamma_omega([0.5], [0.0])
    with pytest.raises(MetricsUndefinedError, match=message):
        bootstrap_intervals([0.5, 0.5], [0.0, 0.0], n_boot=100)


@pytest.mark.parametrize(
    ("coord", "base", "field"),
    [
        ([0.5, float("nan")], [0.5], r"coordinated\[1\]"),
        ([0.5, 0.5], [0.5, -0.1], r"baseline\[1\]"),
        ([-0.1], [0.5], r"coordinated\[0\]"),
        ({0.5}, [0.5], "coordinated must be a non-empty sequence"),
        ([0.5], (s for s in [0.5]), "baseline must be a non-empty sequence"),
    ],
)
def test_bad_scores_name_their_field(coord, base, field) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CoordinationInputError, match=field):
        gamma_omega(coord, base)
    if not isinstance(base, Iterator):  # a generator is spent by the first call
        with pytest.raises(CoordinationInputError, match=field):
            bootstrap_intervals(coord, base, n_boot=100)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_boot": 99}, r"n_boot must be in \[100, 1000000\], got 99"),
        ({"n_boot": 1_000_001}, r"n_boot must be in \[100, 1000000\], got 1000001"),
        ({"level": 0.49}, r"level must be in \[0.5, 0.999\], got 0.49"),
        ({"level": 0.9995}, r"level must be in \[0.5, 0.999\], got 0.9995"),
        ({"level": 1.0}, r"level must be in \[0.5, 0.999\], got 1.0"),
    ],
)
def test_bootstrap_settings_out_of_range_are_refused(kwargs, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CoordinationInputError, match=message) as info:
        bootstrap_intervals([0.5, 0.6], [0.5], **kwargs)
    assert info.value.context["field"] == next(iter(kwargs))


@pytest.mark.parametrize("kwargs", [{"n_boot": 100}, {"level": 0.5}, {"level": 0.999}])
def test_bootstrap_settings_at_their_bounds_are_accepted(kwargs) -> None:  # type: ignore[no-untyped-def]
    gamma_ci, _, _ = bootstrap_intervals([0.5, 0.6], [0.5], **kwargs)
    assert gamma_ci.level == kwargs.get("level", 0.95)


def test_similarity_is_case_blind_and_normalised_by_both_lengths() -> None:
    assert bag_of_words("The cat, the HAT") == Counter({"the": 2, "cat": 1, "hat": 1})
    assert cosine_similarity("a b", "a c") == pytest.approx(0.5)  # 1 / (√2 · √2)
    assert cosine_similarity("a a b", "a") == pytest.approx(2 / math.sqrt(5))
    assert cosine_similarity("a b", "a a") == pytest.approx(1 / math.sqrt(2))  # 2 / (√2 · 2)


def test_similarity_never_exceeds_one_by_rounding() -> None:
    text = "a b b b b b"  # 26 / (√26 · √26) is 1.0000000000000002 in floating point
    assert cosine_similarity(text, text) == 1.0


def test_too_few_answers_name_the_field() -> None:
    with pytest.raises(CoordinationInputError) as info:
        consensus_rate([])
    assert info.value.context == {"field": "answers"}


def test_effective_needs_the_lower_bound_strictly_above_one() -> None:
    tie = CoordinationMetrics(
        task="t", strategy="debate", num_agents=2, gamma=1.1, omega=0.0, consensus_rate=1.0,
        coordinated_scores=[0.6, 0.5], baseline_scores=[0.5], gamma_ci=Interval(1.0, 1.2),
    )  # fmt: skip
    assert not tie.is_coordination_effective()


@pytest.mark.parametrize(("cost", "shown"), [(Decimal("0.0123"), "0.0123"), (None, None)])
def test_to_dict_shows_the_cost_as_an_exact_string(cost, shown) -> None:  # type: ignore[no-untyped-def]
    metrics = CoordinationMetrics(
        task="t", strategy="debate", num_agents=2, gamma=1.0, omega=0.0, consensus_rate=1.0,
        coordinated_scores=[0.5], baseline_scores=[0.5], cost_usd=cost,
    )  # fmt: skip
    data = metrics.to_dict()
    assert data["cost_usd"] == shown  # a Decimal would not be JSON-serialisable


def test_compute_metrics_fills_every_field_from_its_inputs() -> None:
    coord, base = [0.61, 0.72], [0.4, 0.52]
    metrics = compute_metrics(
        task="sum", strategy="debate", num_agents=3, coordinated_scores=coord,
        baseline_scores=base, agent_answers_per_run=[["x y", "x y"], ["x", "z"]],
        n_boot=500, seed=7,
    )  # fmt: skip
    gamma, omega = gamma_omega(coord, base)
    gamma_ci, omega_ci, dropped = bootstrap_intervals(coord, base, n_boot=500, seed=7)
    assert dropped == 0
    assert (metrics.task, metrics.strategy, metrics.num_agents) == ("sum", "debate", 3)
    assert (metrics.gamma, metrics.omega) == (gamma, omega)
    assert metrics.consensus_rate == pytest.approx((1.0 + 0.0) / 2)  # averaged over the runs
    assert (metrics.coordinated_scores, metrics.baseline_scores) == (coord, base)
    assert (metrics.gamma_ci, metrics.omega_ci) == (gamma_ci, omega_ci)  # two runs: intervals
    assert metrics.repeats == 2
    assert metrics.details == {}


def test_compute_metrics_defaults_reproduce_2000_resamples_with_seed_0() -> None:
    coord, base = [0.61, 0.72, 0.55, 0.9, 0.33, 0.8], [0.4, 0.52, 0.47, 0.6]
    defaults = compute_metrics(
        task="sum", strategy="debate", num_agents=3, coordinated_scores=coord,
        baseline_scores=base, agent_answers_per_run=[["x", "x"]],
    )  # fmt: skip
    gamma_ci, omega_ci, _ = bootstrap_intervals(coord, base, n_boot=2000, seed=0)
    assert (defaults.gamma_ci, defaults.omega_ci) == (gamma_ci, omega_ci)


def test_compute_metrics_reports_dropped_resamples_only_when_there_are_some() -> None:
    # Baseline {0, 0, 0.5}: (2/3)^3 = 30 % of the resamples have baseline mean 0 (γ undefined).
    coord, base = [0.5, 0.6], [0.0, 0.0, 0.5]
    _, _, dropped = bootstrap_intervals(coord, base, n_boot=300, seed=4)
    assert dropped > 0
    metrics = compute_metrics(
        task="t", strategy="debate", num_agents=2, coordinated_scores=coord,
        baseline_scores=base, agent_answers_per_run=[["a", "a"]], n_boot=300, seed=4,
    )  # fmt: skip
    assert metrics.details == {"bootstrap_dropped": dropped}
    single = compute_metrics(
        task="t", strategy="debate", num_agents=2, coordinated_scores=[0.5],
        baseline_scores=base, agent_answers_per_run=[["a", "a"]],
    )  # fmt: skip
    assert single.details == {}


def test_compute_metrics_refuses_no_runs_by_name() -> None:
    with pytest.raises(CoordinationInputError, match=r"^agent_answers_per_run must not be empty$"):
        compute_metrics(
            task="t", strategy="debate", num_agents=2, coordinated_scores=[0.5],
            baseline_scores=[0.5], agent_answers_per_run=[],
        )  # fmt: skip
