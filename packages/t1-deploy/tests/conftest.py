"""Shared fixtures: one small real reference system (stdlib data, BM25, HNSW), built once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from t1_deploy.confounding import ConfoundingResolutionConfig
from t1_deploy.contract import ProductionGuards
from t1_deploy.harvest import LatencyHarvestConfig
from t1_deploy.monitoring import MonitoringConfig
from t1_deploy.package import DeploymentConfig, DeploymentLogs, ProductionDeploymentPackage
from t1_deploy.reference.dataset import CodeSearchDataset, build_dataset
from t1_deploy.reference.system import ReferenceSearchSystem, SearchConfig
from t1_deploy.router import MonotoneRouterDistiller


def tiny_config(seed: int = 0) -> DeploymentConfig:
    """Small enough for the not-slow suite, large enough for every statistic to be defined."""
    return DeploymentConfig(
        seed=seed,
        max_pairs=1400,
        search=SearchConfig(latency_repeats=1, svd_dim=64, seed=seed),
        harvest=LatencyHarvestConfig(
            ef_values=(16, 108),
            topk_values=(20, 88),
            wide_ef_values=(2,),
            wide_topk_values=(10,),
            n_queries=60,
            repeats=1,
            n_resamples=300,
        ),
        confounding=ConfoundingResolutionConfig(
            n_permutations=100, power_simulations=10, power_permutations=50
        ),
        guards=ProductionGuards(n_resamples=500),
        monitoring=MonitoringConfig(calibration_paths=300, queries_per_window=200),
        contract_simulations=10,
        no_regret_resamples=500,
    )


@pytest.fixture(scope="session")
def tiny_deployment_config() -> DeploymentConfig:
    return tiny_config()


@pytest.fixture(scope="session")
def dataset() -> CodeSearchDataset:
    return build_dataset(seed=0, max_pairs=1400)


@pytest.fixture(scope="session")
def system(dataset: CodeSearchDataset) -> ReferenceSearchSystem:
    return ReferenceSearchSystem(dataset, SearchConfig(latency_repeats=1, svd_dim=64))


@pytest.fixture(scope="session")
def logs(system: ReferenceSearchSystem, dataset: CodeSearchDataset) -> DeploymentLogs:
    return DeploymentLogs(
        **{
            s: system.run_queries(dataset.splits[s])
            for s in ("train", "validation", "test", "holdback")
        }
    )


@pytest.fixture(scope="session")
def distiller(logs: DeploymentLogs) -> MonotoneRouterDistiller:
    d = MonotoneRouterDistiller()
    d.fit(
        logs.train.features,
        (logs.train.gain > 0).astype(float),
        logs.train.latency_t1_ms,
        logs.train.gain,
    )
    return d


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("tiny_run")
    results = ProductionDeploymentPackage(tiny_config()).run(out)
    return out, results


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
