"""Alerts and dashboards speak of metrics the code really exports, and the dashboards are current."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

import grafana_dashboards

REPO = Path(__file__).resolve().parents[2]
PREFIXES = "trust_gate|fusion|cert|hbt|t1|resontinex"
METRIC = re.compile(rf"\b((?:{PREFIXES})_[a-z0-9_]+)\b")
SUFFIXES = ("_bucket", "_sum", "_count", "_created")


def exported_names() -> set[str]:
    """Every metric-looking string literal in the members' and the umbrella's source."""
    names: set[str] = set()
    sources = [*REPO.glob("packages/*/src/**/*.py"), *REPO.glob("src/resontinex/**/*.py")]
    for source in sources:
        names |= set(re.findall(rf"[\"']((?:{PREFIXES})_[a-z0-9_]+)[\"']", source.read_text()))
    return names


def referenced(expr: str) -> set[str]:
    found = set()
    for name in METRIC.findall(expr):
        for suffix in SUFFIXES:
            if name.endswith(suffix) and not name.endswith("_total"):
                name = name[: -len(suffix)]
        found.add(name)
    return found


def alert_exprs() -> list[tuple[str, str]]:
    rules = yaml.safe_load((REPO / "configs/prometheus/alerts.yml").read_text())
    return [(r["alert"], r["expr"]) for group in rules["groups"] for r in group["rules"]]


def dashboard_exprs() -> list[tuple[str, str]]:
    out = []
    for path in sorted((REPO / "configs/grafana/dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            out += [(f"{path.name}: {panel['title']}", t["expr"]) for t in panel["targets"]]
    return out


@pytest.mark.parametrize(("where", "expr"), alert_exprs() + dashboard_exprs())
def test_every_query_names_exported_metrics(where: str, expr: str) -> None:
    names = referenced(expr)
    assert names, f"{where}: no RESONTINEX metric in {expr!r}"
    missing = names - exported_names()
    assert not missing, f"{where}: {sorted(missing)} is not exported by any package"


def test_every_seed_alert_is_present() -> None:
    alerts = {name for name, _ in alert_exprs()}
    assert {
        "TrustGateLatencyP99High",
        "TrustGateErrorRateHigh",
        "TrustFloorViolationsHigh",
        "BudgetHardLimitReached",
        "AnthropicCircuitBreakerOpen",
        "AnthropicCostApproachingCap",
        "TrajectoryOOMFallbacks",
        "TrajectoryQualityFailureRateHigh",
        "BehaviouralDriftDetected",
        "T1RollbackTriggered",
    } <= alerts


def test_committed_dashboards_are_what_the_generator_writes() -> None:
    committed = {
        p.name: p.read_text() for p in (REPO / "configs/grafana/dashboards").glob("*.json")
    }
    assert committed == grafana_dashboards.render()


def test_one_dashboard_per_member() -> None:
    assert set(grafana_dashboards.DASHBOARDS) == {
        "resontinex-trust",
        "fusion-ops",
        "cert",
        "hbt-core",
        "t1-deploy",
    }


@pytest.mark.parametrize("manifest", ["deployment.yaml", "replicated/deployment.yaml"])
def test_deploy_manifests_probe_the_health_endpoints_and_set_limits(manifest: str) -> None:
    deployment = yaml.safe_load((REPO / "configs/deploy/k8s" / manifest).read_text())
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert set(container["resources"]["limits"]) == {"cpu", "memory"}
    secret = {"RESONTINEX_API_TOKEN", "RESONTINEX_DATABASE_URL", "PGPASSWORD"}
    assert all("value" not in env for env in container["env"] if env["name"] in secret)


def test_replicas_share_one_postgresql_database() -> None:
    deployment = yaml.safe_load(
        (REPO / "configs/deploy/k8s/replicated/deployment.yaml").read_text()
    )
    assert deployment["spec"]["replicas"] > 1
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["RESONTINEX_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "resontinex-db"
    assert "HBT_SIGNING_KEY_PATH" in env  # one signing key for every replica
    assert "persistentVolumeClaim" not in str(deployment)  # no replica owns state on a volume
    compose = yaml.safe_load((REPO / "configs/deploy/docker-compose.yml").read_text())
    assert set(compose["services"]) == {"resontinex", "postgres", "prometheus", "grafana"}
    service = compose["services"]["resontinex"]
    assert service["environment"]["RESONTINEX_DATABASE_URL"].startswith("postgresql://")
    assert service["environment"]["HBT_SIGNING_KEY_PATH"] == "/run/secrets/signing-key"
    assert compose["secrets"]["signing-key"]["file"] == "./signing-key.pem"
    assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
