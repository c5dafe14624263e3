"""Simulated A/A and +15% regression runs through the real analysis (bootstrap + verdict rules).

Noise model: per scenario a fixed prompt cost plus an output cost with log-normal run-to-run
noise (coefficient of variation 10%), 8 scenarios, n = 10 runs per side. The benchmark
``bench_budget_statistics.py`` sweeps the noise level and uses the offline backend's samples.
"""

from __future__ import annotations

from collections.abc import Callable

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


def test_interval_covers_zero_under_aa(noisy_report: Callable[..., BudgetReport]) -> None:
    """The [5%, 95%] bootstrap interval should contain the true delta (0) about 90% of the time."""
    covered = 0
    for seed in range(SIMULATIONS):
        delta = analyze_report(
            noisy_report(0.0, 10, 8, 0.10, seed), n_bootstrap=500, seed=seed
        ).token_delta
        assert delta is not None
        covered += delta.low <= 0 <= delta.high
    assert covered / SIMULATIONS >= 0.80
