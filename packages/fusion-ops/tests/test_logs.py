from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from fusion_ops.governance import EnergyGovernor
from fusion_ops.logs import correlation_id, correlation_scope
from fusion_ops.tripwire import BudgetTripwire


def test_events_are_json_with_the_correlation_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fusion_ops")
    with correlation_scope("req-42"):
        wire = BudgetTripwire(tmp_path / "t.json")
        for _ in range(3):
            wire.record(40)
    assert correlation_id.get() is None
    wire.reset("oncall")
    events = [json.loads(r.getMessage()) for r in caplog.records]
    latched = next(e for e in events if e["event"] == "tripwire_latched")
    assert latched["correlation_id"] == "req-42"
    reset = next(e for e in events if e["event"] == "tripwire_reset")
    assert "correlation_id" not in reset


def test_approval_tokens_are_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="fusion_ops")
    gov = EnergyGovernor(1_000_000)
    token = gov.grant_approval(50_000, "cfo")
    gov.request(gov.estimate(20_000), approval_token=token)
    assert caplog.records
    assert all(token not in r.getMessage() for r in caplog.records)
