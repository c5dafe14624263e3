"""Showcase for `resontinex demo`: a quick deployment run on the stdlib code-search system."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def showcase(out_dir: Path) -> str:
    """Run the quick profile end to end into `out_dir`; return a readable summary."""
    from t1_deploy.cli import render_summary
    from t1_deploy.package import DeploymentConfig, ProductionDeploymentPackage

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = ProductionDeploymentPackage(DeploymentConfig.profile("quick")).run(out)
    return "\n".join(
        [
            "t1-deploy: release governance of a BM25 → embedding/HNSW code-search ranker "
            "(quick profile, stdlib data set)",
            render_summary(results, out),
            *verdicts(results),
        ]
    )


def verdicts(results: dict[str, Any]) -> list[str]:
    """One line per verdict: what it means and whether the quick profile's data should give it."""
    failed = [g["name"] for g in results["contract"]["guards"] if g["status"] == "failed"]
    verdict = results["verdict"]
    if verdict == "BLOCKED":
        release = (
            f"release {verdict}, expected: guard(s) {', '.join(failed) or '-'} failed; on the "
            "quick profile's small stdlib data set the new T1 ranker shows no significant nDCG "
            "gain over T0, and the contract authorises only a proven gain (δ = 0)"
        )
    else:
        release = (
            f"release {verdict}, UNEXPECTED on the quick profile: every evaluated guard passed"
        )
    passed = results["no_regret"]["passed"]
    regret = (
        "no-regret pass, expected: the distilled router (R² ≈ 1 to its teacher) loses no "
        "nDCG against teacher routing, at the 95% lower confidence bound"
        if passed
        else "no-regret FAIL, possible on the quick profile: the lower confidence bound of "
        "distilled − teacher nDCG is below the margin on this small sample; the full profile "
        "decides"
    )
    return ["verdicts:", f"  {release}", f"  {regret}"]
