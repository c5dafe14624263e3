"""Tests that kill the coordination metrics' surviving mutants (tools/mutate.py cert-coordination).

Ω is measured against the *best* lone agent, not the average one: a team that beats the average
agent but not the best has Ω < 0. The bootstrap must keep that definition in every replicate.
"""

from __future__ import annotations

import pytest

from cert.coordination.metrics import bootstrap_intervals, gamma_omega


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
