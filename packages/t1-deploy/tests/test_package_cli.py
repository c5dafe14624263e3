"""End to end: the deployment package, its artifacts and schemas, the CLI and the demo."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from t1_deploy.cli import main
from t1_deploy.errors import ArtifactError, ConfigError
from t1_deploy.package import SEED_ARTIFACTS, DeploymentConfig, DeploymentLogs
from t1_deploy.router import Int8RouterPolicy, MonotoneRouterDistiller
from t1_deploy.schemas import validate_artifacts


def test_run_writes_every_schema_valid_artifact(tiny_run: tuple[Path, dict[str, Any]]) -> None:
    out, results = tiny_run
    for name in SEED_ARTIFACTS:
        assert (out / name).is_file(), name
    assert results["artifact_validation"] == dict.fromkeys(
        sorted(results["artifact_validation"]), "valid"
    )
    assert set(results["artifact_validation"]) == set(SEED_ARTIFACTS)
    assert (out / "roc_router.png").stat().st_size > 1000
    assert (out / "pareto_latency_harvest.png").stat().st_size > 1000
    summary = json.loads((out / "deployment_summary.json").read_text())
    assert summary["verdict"] in ("AUTHORISED", "BLOCKED")
    assert summary["deployment_ready"] == (summary["verdict"] == "AUTHORISED")
    policy = Int8RouterPolicy.load(out / "router_distilled_int8.json")
    assert policy.threshold == pytest.approx(summary["gating"]["theta_star"])


def test_numbers_in_artifacts_come_from_the_run(tiny_run: tuple[Path, dict[str, Any]]) -> None:
    out, results = tiny_run
    n = results["ndcg_at_10"]
    assert 0 < n["t0"] < 1
    assert 0 < n["t1"] < 1
    contract = (out / "T1_release_contract.md").read_text()
    assert f"T0 {n['t0']:.4f}" in contract
    coverage = (out / "conformal_coverage_report.csv").read_text().splitlines()
    assert coverage[0].startswith("slice,n_calibration")
    assert {line.split(",")[0] for line in coverage[1:]} == {"hard_nl", "other"}
    gallery = (out / "regression_gallery.md").read_text()
    assert ("## Improvements" in gallery and "rank before (T0)" in gallery) or "(none)" in gallery


def test_corrupted_artifacts_are_reported(
    tiny_run: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    out, _ = tiny_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    theta = json.loads((copy / "theta_star_production.json").read_text())
    theta["roc_auc"] = 3.0
    (copy / "theta_star_production.json").write_text(json.dumps(theta))
    with pytest.raises(ArtifactError, match="roc_auc"):
        validate_artifacts(copy)
    shutil.copy(out / "theta_star_production.json", copy / "theta_star_production.json")
    (copy / "regression_gallery.md").write_text("nothing here")
    with pytest.raises(ArtifactError, match="regression_gallery"):
        validate_artifacts(copy)
    (copy / "router_distilled_int8.json").write_text("{not json")
    with pytest.raises(ArtifactError):
        validate_artifacts(copy)


def test_cli_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert main([]) == 2
    assert main(["run"]) == 2  # --out is required
    assert main(["monitor", "--duration", "5", "--scenario", "meltdown"]) == 2
    assert main(["monitor", "--duration", "0"]) == 2
    assert main(["run", "--out", "x", "--profile", "huge"]) == 2
    assert main(["run", "--out", "x", "--max-pairs", "10"]) == 2
    capsys.readouterr()


def test_profiles() -> None:
    assert (
        DeploymentConfig.profile("quick").max_pairs < DeploymentConfig.profile("default").max_pairs
    )
    with pytest.raises(ConfigError):
        DeploymentConfig.profile("huge")
    with pytest.raises(ConfigError):
        DeploymentConfig(max_pairs=10)


@pytest.mark.slow
def test_cli_monitor_rolls_back_a_ranking_collapse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "monitor",
            "--duration",
            "30",
            "--scenario",
            "ranking-collapse",
            "--out",
            str(tmp_path),
            "--output-format",
            "json",
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert "stability_loss" in report["rollback"]["triggers"]
    assert (tmp_path / "monitoring.png").is_file()
    assert list(tmp_path.glob("snapshot_window*.json"))


@pytest.mark.slow
def test_demo_showcase(tmp_path: Path) -> None:
    from t1_deploy.demo import showcase

    text = showcase(tmp_path / "demo")
    assert "verdict:" in text
    assert "verdicts:" in text
    assert "release BLOCKED, expected" in text
    assert "nDCG@10" in text
    for name in SEED_ARTIFACTS:
        assert (tmp_path / "demo" / name).is_file()


def test_distillation_is_deterministic(logs: DeploymentLogs) -> None:
    tables = []
    for _ in range(2):
        d = MonotoneRouterDistiller()
        d.fit(
            logs.train.features,
            (logs.train.gain > 0).astype(float),
            logs.train.latency_t1_ms,
            logs.train.gain,
        )
        tables.append(d.to_payload()["heads"])
    assert tables[0]["tau"] == tables[1]["tau"]
    assert tables[0]["gain"] == tables[1]["gain"]


def test_json_logs_carry_the_correlation_id() -> None:
    import logging

    from t1_deploy._logging import JsonFormatter, correlated

    record = logging.LogRecord("t1_deploy.x", logging.WARNING, __file__, 1, "rollback", None, None)
    record.triggers = ["latency_breach"]
    with correlated("run-42"):
        line = json.loads(JsonFormatter().format(record))
    assert line["correlation_id"] == "run-42"
    assert line["triggers"] == ["latency_breach"]
    assert line["message"] == "rollback"


def test_seed_api_with_two_logs(
    logs: DeploymentLogs, tiny_deployment_config: DeploymentConfig
) -> None:
    """`ProductionDeploymentPackage(config).create_complete_deployment_package(train, validation)`
    works without prepare(): test and holdback logs are carved out of the validation log."""
    from t1_deploy.package import ProductionDeploymentPackage

    package = ProductionDeploymentPackage(tiny_deployment_config)
    results = package.create_complete_deployment_package(logs.train, logs.validation)
    assert results["evaluation_source"].startswith("carved")
    parts = results["n_queries"]
    assert parts["validation"] + parts["test"] + parts["holdback"] == len(logs.validation)
    assert results["verdict"] in ("AUTHORISED", "BLOCKED")
