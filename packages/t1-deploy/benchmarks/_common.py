"""Shared setup for the benchmarks: one reference system and its measured query logs."""

from __future__ import annotations

import platform

from t1_deploy.package import DeploymentConfig, DeploymentLogs, ProductionDeploymentPackage
from t1_deploy.reference.system import SearchConfig
from t1_deploy.router import MonotoneRouterDistiller


def reference_logs(
    quick: bool, seed: int = 0
) -> tuple[ProductionDeploymentPackage, DeploymentLogs]:
    """Quick: 1400 pairs, 1 latency repeat; full: the default profile's sizes."""
    if quick:
        config = DeploymentConfig(
            seed=seed, max_pairs=1400, search=SearchConfig(latency_repeats=1, svd_dim=64, seed=seed)
        )
    else:
        config = DeploymentConfig.profile("default", seed=seed)
    package = ProductionDeploymentPackage(config)
    import scipy.linalg  # noqa: F401
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        logs = package.prepare()
    return package, logs


def fitted_router(logs: DeploymentLogs) -> MonotoneRouterDistiller:
    """The distilled router trained on the logs' training split, as the deployment run does."""
    distiller = MonotoneRouterDistiller()
    distiller.fit(
        logs.train.features,
        (logs.train.gain > 0).astype(float),
        logs.train.latency_t1_ms,
        logs.train.gain,
    )
    return distiller


def context(extra: str) -> str:
    return f"Python {platform.python_version()}, {platform.machine()}; {extra}"


def row(*cells: object) -> str:
    """One markdown table row."""
    return "| " + " | ".join(str(c) for c in cells) + " |"
