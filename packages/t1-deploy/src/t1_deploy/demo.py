"""Showcase for `resontinex demo`: a quick deployment run on the stdlib code-search system."""

from __future__ import annotations

import time
from pathlib import Path


def showcase(out_dir: Path) -> str:
    """Run the quick profile end to end into `out_dir`; return a readable summary."""
    from t1_deploy.cli import render_summary
    from t1_deploy.package import DeploymentConfig, ProductionDeploymentPackage

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = ProductionDeploymentPackage(DeploymentConfig.profile("quick")).run(out)
    took = time.perf_counter() - started
    return (
        "t1-deploy: release governance of a BM25 → embedding/HNSW code-search ranker "
        "(quick profile, stdlib data set)\n" + render_summary(results, out) + f"\n({took:.1f} s)"
    )
