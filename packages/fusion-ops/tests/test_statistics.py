"""Simulated A/A and +15% regression runs through the real analysis (bootstrap + verdict rules).

Noise model: per scenario a fixed prompt cost plus an output cost with log-normal run-to-run
noise (coefficient of variation 10%), 8 scenarios, n = 10 runs per side. The benchmark
``bench_budget_statistics.py`` sweeps the noise level and uses the offline backend's samples.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fusion_ops.budget_analysis import Thresholds, analyze_report
from fusion_ops.report import BudgetReport

SIMULATIONS = 150


def _statuses(noisy_report: Callable[..., BudgetReport], shift: float) -> list[str]:
    return [
        analyze_report(
            noisy_report(shift, 10, 8, 0.10, seed), Thresholds(12, 25), n_bootstrap=500, seed=seed
        ).status
        for seed in range(SIMULATIONS)
    ]


def test_aa_false_block_rate_is_at_most_five_percent(
    noisy_report: Callable[..., BudgetReport],
) -> None:
    statuses = _statuses(noisy_report, 0.0)
    assert statuses.count("block") / SIMULATIONS <= 0.05
    assert statuses.count("warn") / SIMULATIONS <= 0.05
    assert "error" not in statuses


def test_fifteen_percent_regression_is_detected_at_n10(
    noisy_report: Callable[..., BudgetReport],
) -> None:
    statuses = _statuses(noisy_report, 0.15)
    detected = sum(s in ("warn", "block") for s in statuses)
    assert detected / SIMULATIONS >= 0.95


COVERAGE_SIMULATIONS = 1000


@pytest.mark.slow
def test_interval_has_its_nominal_coverage_under_aa(
    noisy_report: Callable[..., BudgetReport],
) -> None:
    """At confidence 0.95 the interval is [5%, 95%]: nominal two-sided coverage 90%, and each
    end misses the true delta (0) about 5% of the time; the lower end is the gate's one-sided
    bound. 1,000 A/A simulations (4 scenarios, n = 30 runs per side, where the percentile
    bootstrap is close to exact) give a binomial standard error of about 1 point on the
    coverage and 0.7 on each tail, so the bands below are roughly ±2.5 standard errors (the
    percentile bootstrap runs slightly narrow, so the band sits a little below 90%).
    Measured: coverage 0.880, tails 0.058 / 0.062. A 97.5% one-sided bound ([2.5%, 97.5%])
    gives 0.944 and 0.027 / 0.029 and fails every band; a 90% bound fails the same way.
    """
    low_misses = high_misses = 0
    for seed in range(COVERAGE_SIMULATIONS):
        delta = analyze_report(
            noisy_report(0.0, 30, 4, 0.10, seed), n_bootstrap=400, seed=seed
        ).token_delta
        assert delta is not None
        low_misses += delta.low > 0
        high_misses += delta.high < 0
    coverage = 1 - (low_misses + high_misses) / COVERAGE_SIMULATIONS
    assert 0.865 <= coverage <= 0.925
    assert 0.035 <= low_misses / COVERAGE_SIMULATIONS <= 0.075
    assert 0.035 <= high_misses / COVERAGE_SIMULATIONS <= 0.075
