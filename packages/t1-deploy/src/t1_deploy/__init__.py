"""Release governance for a search ranker: router distillation, confounding audit, gating,
latency harvest, release contract, monitoring and sustainment — on a real reference search system.

Names are imported lazily so `import t1_deploy` stays light (no LightGBM, faiss, scipy).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from t1_deploy.__about__ import __version__

_EXPORTS = {
    "ProductionDeploymentPackage": "t1_deploy.package",
    "DeploymentConfig": "t1_deploy.package",
    "MonotoneRouterDistiller": "t1_deploy.router",
    "RouterDistillationConfig": "t1_deploy.router",
    "Int8RouterPolicy": "t1_deploy.router",
    "ConfoundingResolver": "t1_deploy.confounding",
    "ConfoundingResolutionConfig": "t1_deploy.confounding",
    "TwoStageGatingOptimizer": "t1_deploy.gating",
    "GatingOptimizationConfig": "t1_deploy.gating",
    "LatencyHarvestOptimizer": "t1_deploy.harvest",
    "LatencyHarvestConfig": "t1_deploy.harvest",
    "T1ReleaseContract": "t1_deploy.contract",
    "ProductionGuards": "t1_deploy.contract",
    "BaselineMetrics": "t1_deploy.contract",
    "CandidateEvidence": "t1_deploy.contract",
    "ProductionMonitoringSystem": "t1_deploy.monitoring",
    "MonitoringConfig": "t1_deploy.monitoring",
    "SustainmentLoopSystem": "t1_deploy.sustainment",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 't1_deploy' has no attribute {name!r}")
