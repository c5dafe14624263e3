"""Tests that kill budget_analysis' surviving mutants (tools/mutate.py fusion-ops --module budget_analysis).

The interval's ends must be the α and 1 − α quantiles of the bootstrap (α = 1 − confidence), so
its lower end is a one-sided bound at ``confidence``. A coverage simulation cannot tell α from
α / 2 (a one-sided 95 % bound silently turned into a 97.5 % one) at a testable cost; a bootstrap
whose distribution is known exactly can. With a constant baseline of 100 tokens and a candidate
of five runs at 100 and five at 200, a replicate's delta is 10·K % with K ~ Binomial(10, 1/2):
P(K ≤ 2) = 5.5 %, P(K ≤ 3) = 17.2 %, P(K ≤ 4) = 37.7 %, P(K ≤ 5) = 62.3 %, P(K ≤ 6) = 82.8 %,
P(K ≤ 7) = 94.5 %. Each expected quantile sits at least 2.8 points of probability inside its
step, over ten standard errors of the empirical CDF at 20 000 replicates, whatever the seed.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fusion_ops.budget_analysis import analyze_report
from fusion_ops.report import BudgetReport

BINOMIAL_ROWS = [([100] * 10, [100] * 5 + [200] * 5)]


@pytest.mark.parametrize(
    ("confidence", "low", "high"),
    [(0.8, 40.0, 60.0), (0.9, 30.0, 70.0)],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_interval_ends_are_the_alpha_quantiles_of_the_bootstrap(
    make_report: Callable[..., BudgetReport],
    confidence: float,
    low: float,
    high: float,
    seed: int,
) -> None:
    analysis = analyze_report(
        make_report(BINOMIAL_ROWS), confidence=confidence, n_bootstrap=20_000, seed=seed
    )
    delta = analysis.token_delta
    assert delta is not None
    assert (delta.estimate, delta.low, delta.high) == (50.0, low, high)
