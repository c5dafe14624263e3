from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path

from fusion_ops.demo import showcase
from fusion_ops.governance import EnergyGovernor
from fusion_ops.health import budget_status_payload, health_payload
from fusion_ops.runtime_router import RuntimeRouter
from fusion_ops.tripwire import BudgetTripwire


def test_health_payload_reflects_components(tmp_path: Path) -> None:
    gov = EnergyGovernor(1000)
    wire = BudgetTripwire(tmp_path / "t.json")
    payload = health_payload(governor=gov, router=RuntimeRouter(), tripwire=wire)
    json.dumps(payload)
    assert payload["status"] == "ok"
    assert set(payload["components"]) == {"governor", "router", "tripwire"}
    for _ in range(3):
        wire.record(50)
    assert health_payload(tripwire=wire)["status"] == "degraded"
    gov.request(gov.estimate(1600, emergency=True))  # 960 after the discount
    assert health_payload(governor=gov)["status"] == "critical"


def test_router_without_overlays_is_critical(router_dir: Path) -> None:
    for path in (router_dir / "micro_overlays").iterdir():
        path.write_bytes(b"")
    router = RuntimeRouter(router_dir)
    assert health_payload(router=router)["status"] == "critical"


def test_budget_status_payload(tmp_path: Path) -> None:
    gov = EnergyGovernor(1000, period="2026-11")
    gov.commit(gov.request(gov.estimate(100)))
    payload = budget_status_payload(gov, BudgetTripwire(tmp_path / "t.json"))
    json.dumps(payload)
    assert payload["ledger"]["committed"] == 100
    assert payload["limits"]["hard_limit_percentage"] == 95
    assert payload["tripwire"]["downgraded"] is False
    assert payload["status"] == "ok"


def test_showcase_writes_artifacts_and_summary(tmp_path: Path) -> None:
    summary = showcase(tmp_path / "out")
    for name in (
        "budget_report.json",
        "budget_analysis.json",
        "budget_comment.md",
        "routing_decisions.json",
        "governor.json",
    ):
        assert (tmp_path / "out" / name).is_file(), name
    analysis = json.loads((tmp_path / "out" / "budget_analysis.json").read_text())
    assert analysis["status"] == "block"
    assert "BLOCK" in summary
    assert "rollback_first" in summary
    assert "high_complexity" in summary
    assert "budget gate BLOCK, expected" in summary
    assert "UNEXPECTED" not in summary
    assert (tmp_path / "out" / "token_means.png").read_bytes().startswith(b"\x89PNG")


def test_showcase_is_registered_as_a_demo_entry_point() -> None:
    [entry] = [e for e in entry_points(group="resontinex.demo") if e.name == "fusion-ops"]
    assert entry.load() is showcase
