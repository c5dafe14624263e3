"""γ, Ω, consensus and the bootstrap intervals."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cert.coordination.errors import CoordinationInputError, MetricsUndefinedError
from cert.coordination.metrics import (
    bootstrap_intervals,
    compute_metrics,
    consensus_rate,
    cosine_similarity,
    gamma_omega,
)

scores = st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12)


def test_identical_answers_have_full_consensus() -> None:
    assert consensus_rate(["The same text.", "The same text.", "the SAME text"]) == pytest.approx(
        1.0
    )
    assert cosine_similarity("alpha beta", "gamma delta") == 0.0
    assert cosine_similarity("", "") == 1.0
    assert cosine_similarity("", "word") == 0.0


@given(st.text(max_size=80), st.text(max_size=80))
def test_similarity_is_symmetric_and_bounded(a: str, b: str) -> None:
    s = cosine_similarity(a, b)
    assert 0.0 <= s <= 1.0
    assert s == pytest.approx(cosine_similarity(b, a))
    assert cosine_similarity(a, a) == pytest.approx(1.0)


def test_gamma_and_omega_by_definition() -> None:
    gamma, omega = gamma_omega([0.9, 0.7], [0.5, 0.6, 0.7])
    assert gamma == pytest.approx(0.8 / 0.6)
    assert omega == pytest.approx(0.8 - 0.7)


def test_gamma_undefined_for_zero_baseline() -> None:
    with pytest.raises(MetricsUndefinedError):
        gamma_omega([0.5], [0.0, 0.0])


@settings(max_examples=30, deadline=None)
@given(scores, scores.filter(lambda b: sum(b) / len(b) >= 1e-6))
def test_bootstrap_interval_is_ordered_and_within_resample_range(coord, base) -> None:  # type: ignore[no-untyped-def]
    g, o, _ = bootstrap_intervals(coord, base, n_boot=200)
    assert g.low <= g.high
    assert o.low <= o.high
    assert -1.0 <= o.low <= o.high <= 1.0


def test_effective_only_when_gamma_lower_bound_above_one() -> None:
    strong = compute_metrics(
        task="t",
        strategy="parallel",
        num_agents=2,
        coordinated_scores=[0.9, 0.92, 0.88, 0.91, 0.9],
        baseline_scores=[0.5, 0.55, 0.45],
        agent_answers_per_run=[["a b", "a c"]],
    )
    assert strong.gamma_ci is not None
    assert strong.gamma_ci.low > 1.0
    assert strong.is_coordination_effective()
    noisy = compute_metrics(
        task="t",
        strategy="parallel",
        num_agents=2,
        coordinated_scores=[0.9, 0.3, 0.8, 0.4],
        baseline_scores=[0.6, 0.5, 0.55],
        agent_answers_per_run=[["a", "a"]],
    )
    assert noisy.gamma > 1.0
    assert not noisy.is_coordination_effective()
    single = compute_metrics(
        task="t",
        strategy="parallel",
        num_agents=2,
        coordinated_scores=[0.99],
        baseline_scores=[0.1],
        agent_answers_per_run=[["a", "a"]],
    )
    assert single.gamma_ci is None
    assert not single.is_coordination_effective()  # one run: no interval, no claim
    assert single.to_dict()["coordination_effective"] is False


@pytest.mark.parametrize(
    ("coord", "base", "fragment"),
    [
        ([], [0.5], "coordinated"),
        ([0.5], [1.5], r"baseline\[0\]"),
        ([float("nan")], [0.5], r"coordinated\[0\]"),
        ([True], [0.5], r"coordinated\[0\]"),
        ("0.5", [0.5], "coordinated"),
    ],
)
def test_bad_scores(coord, base, fragment) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CoordinationInputError, match=fragment):
        gamma_omega(coord, base)


def test_consensus_needs_two_answers() -> None:
    with pytest.raises(CoordinationInputError, match="at least 2"):
        consensus_rate(["only one"])


def test_omega_bootstrap_compares_with_the_best_lone_agent_not_the_average() -> None:
    # One strong lone agent among weak ones: Ω = team mean − best baseline, in every resample.
    # A resample's best is 1.0 (Ω = −0.5) unless it misses the strong agent (Ω = +0.5); with a
    # baseline mean instead of the max, Ω would sit between +0.2 and +0.5.
    coordinated, baseline = [0.5] * 10, [0.0] * 9 + [1.0]
    _, omega_ci, _ = bootstrap_intervals(coordinated, baseline, n_boot=4000, seed=3)
    assert omega_ci.low == pytest.approx(-0.5)
    assert omega_ci.high == pytest.approx(0.5)
    _, omega = gamma_omega(coordinated, baseline)
    assert omega == pytest.approx(-0.5)
    metrics = compute_metrics(
        task="t", strategy="debate", num_agents=3, coordinated_scores=coordinated,
        baseline_scores=baseline, agent_answers_per_run=[["a", "b", "c"]] * 10, n_boot=4000,
    )  # fmt: skip
    assert metrics.omega == pytest.approx(-0.5)
    assert metrics.omega_ci is not None
    assert metrics.omega_ci.low == pytest.approx(-0.5)
