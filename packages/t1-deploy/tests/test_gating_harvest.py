"""Two-stage gating (exact: never worse than brute force, ROC) and the latency-harvest Pareto front."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from t1_deploy.errors import ConfigError, InvalidInputError, NotFittedError
from t1_deploy.gating import GatingOptimizationConfig, TwoStageGatingOptimizer, routed_outcome
from t1_deploy.harvest import LatencyHarvestConfig, LatencyHarvestOptimizer, dominates, pareto_front
from t1_deploy.package import DeploymentLogs
from t1_deploy.reference.system import ReferenceSearchSystem
from t1_deploy.router import MonotoneRouterDistiller


def test_gating_equals_the_best_feasible_grid_point(
    logs: DeploymentLogs, distiller: MonotoneRouterDistiller, tmp_path: Path
) -> None:
    scores = distiller.predict(logs.validation.features)
    config = GatingOptimizationConfig(budget_constraint_ms=0.05)
    result = TwoStageGatingOptimizer(config).optimize_gating_parameters(
        logs.validation, scores, 0.001
    )
    base_p95 = np.percentile(logs.validation.latency_t0_ms, 95)
    start = np.quantile(scores, 1 - config.start_upshift_share)
    best = -np.inf
    for theta in np.linspace(start * 0.9, start * 1.1, config.n_theta):
        for frac in config.delta_fractions:
            ndcg, lat, _ = routed_outcome(logs.validation, scores, theta, abs(theta) * frac, 0.001)
            if np.percentile(lat, 95) - base_p95 <= config.budget_constraint_ms:
                best = max(best, float(np.mean(ndcg - logs.validation.ndcg_t0)))
    if result.feasible:
        assert result.p95_lift_ms <= config.budget_constraint_ms + 1e-12
        assert result.mean_delta_ndcg >= best - 1e-12  # never worse than brute force
        assert result.method == "exhaustive"
    else:
        assert best == -np.inf
    positives = logs.validation.gain >= config.min_gain
    assert result.roc_auc == pytest.approx(roc_auc_score(positives, scores))
    assert result.theta_early_exit == pytest.approx(result.theta_star - result.delta)


def test_gating_is_never_worse_than_brute_force_on_synthetic_logs(
    logs: DeploymentLogs,
) -> None:
    """40 synthetic cases (random scores and budgets on the real log): the chosen point's gain is
    the brute-force optimum among feasible grid points, and it is feasible."""
    log = logs.validation
    for case in range(40):
        rng = np.random.default_rng(case)
        scores = rng.random(len(log)) + 0.3 * (log.gain > 0)
        config = GatingOptimizationConfig(
            budget_constraint_ms=float(rng.uniform(0.0, 0.3)), n_theta=15
        )
        result = TwoStageGatingOptimizer(config).optimize_gating_parameters(log, scores, 0.001)
        start = np.quantile(scores, 1 - config.start_upshift_share)
        base_p95 = np.percentile(log.latency_t0_ms, 95)
        best = -np.inf
        for theta in np.linspace(start * 0.9, start * 1.1, config.n_theta):
            for frac in config.delta_fractions:
                ndcg, lat, _ = routed_outcome(log, scores, theta, abs(theta) * frac, 0.001)
                if np.percentile(lat, 95) - base_p95 <= config.budget_constraint_ms:
                    best = max(best, float(np.mean(ndcg - log.ndcg_t0)))
        assert result.feasible == (best > -np.inf)
        if result.feasible:
            assert result.mean_delta_ndcg == pytest.approx(best, abs=1e-12), case
            assert result.p95_lift_ms <= config.budget_constraint_ms


def test_routed_outcome_stages() -> None:
    from t1_deploy.reference.system import QueryLog

    n = 4
    log = QueryLog(
        pair_ids=np.arange(n),
        features=np.zeros((n, 4)),
        ndcg_t0=np.zeros(n),
        ndcg_t1=np.ones(n),
        ndcg_lite=np.full(n, 0.5),
        latency_t0_ms=np.ones(n),
        latency_t1_ms=np.full(n, 10.0),
        latency_lite_ms=np.full(n, 3.0),
        jaccard_t1_exact=np.ones(n),
        hard_nl=np.zeros(n, bool),
        domain=np.array(["a"] * n),
        top_t0=np.zeros((n, 10), int),
        top_t1=np.zeros((n, 10), int),
        top_lite=np.zeros((n, 10), int),
    )
    ndcg, lat, stage = routed_outcome(log, np.array([0.1, 0.45, 0.5, 0.9]), 0.5, 0.1, 0.0)
    assert stage.tolist() == [0, 1, 2, 2]
    assert ndcg.tolist() == [0.0, 0.5, 1.0, 1.0]
    assert lat.tolist() == [1.0, 4.0, 11.0, 11.0]


def test_gating_bad_inputs(logs: DeploymentLogs) -> None:
    opt = TwoStageGatingOptimizer()
    with pytest.raises(InvalidInputError):
        opt.optimize_gating_parameters("log", np.zeros(3))  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        opt.optimize_gating_parameters(logs.validation, np.zeros(5))
    with pytest.raises(NotFittedError):
        opt.export_gating_config("x.json")
    with pytest.raises(ConfigError):
        GatingOptimizationConfig(theta_sweep_range=(1.1, 0.9))


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=30
    )
)
def test_pareto_front_equals_brute_force_dominance(points: list[tuple[int, int, int]]) -> None:
    front = set(pareto_front(points))
    brute = {
        i
        for i, p in enumerate(points)
        if not any(
            all(q[k] <= p[k] for k in range(3)) and any(q[k] < p[k] for k in range(3))
            for q in points
        )
    }
    assert front == brute
    assert all(not dominates(points[j], points[i]) for i in front for j in range(len(points)))


def test_real_ann_sweep_and_export(
    system: ReferenceSearchSystem, logs: DeploymentLogs, tmp_path: Path
) -> None:
    config = LatencyHarvestConfig(
        ef_values=(2, 108),
        topk_values=(10, 88),
        include_wide_grid=False,
        n_queries=40,
        repeats=2,
        n_resamples=300,
    )
    opt = LatencyHarvestOptimizer(config)
    result = opt.optimize_latency_harvest(system, logs.validation.pair_ids.tolist())
    assert {(p.ef, p.topk) for p in result.points} == {(2, 10), (2, 88), (108, 10), (108, 88)}
    for p in result.points:
        assert p.p95_warm_ms > 0
        assert p.p95_cold_ms > 0
        assert 0 <= p.jaccard <= 1
    reference = next(p for p in result.points if (p.ef, p.topk) == (108, 88))
    assert reference.delta_ndcg == 0.0  # same configuration as the system's own T1
    for p in result.points:  # admissibility is the documented rule, and it can reject
        assert p.admissible == (p.delta_ndcg_lcb >= 0.0 and p.jaccard >= config.jaccard_min)
    # Jaccard of the ANN candidates, not of the fused top-10: a shallow search finds fewer of the
    # exact neighbours, which fusion with T0's candidates would hide.
    shallow = next(p for p in result.points if (p.ef, p.topk) == (2, 10))
    assert shallow.jaccard < reference.jaccard
    strict = LatencyHarvestOptimizer(
        LatencyHarvestConfig(**{**config.__dict__, "jaccard_min": reference.jaccard + 1e-9})
    ).optimize_latency_harvest(system, logs.validation.pair_ids.tolist())
    assert not strict.points[[(p.ef, p.topk) for p in strict.points].index((2, 10))].admissible
    assert strict.chosen is None or strict.points[strict.chosen].admissible
    opt.export_latency_harvest_config(tmp_path / "h.json", tmp_path / "pareto.png")
    assert (tmp_path / "pareto.png").stat().st_size > 1000
    with pytest.raises(InvalidInputError):
        opt.optimize_latency_harvest(system, [1, 2])
    with pytest.raises(ConfigError):
        LatencyHarvestConfig(ef_values=())
