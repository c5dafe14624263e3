"""Break-glass: authorisation, expiry, audit records, tamper detection, bad arguments."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from resontinex.trust import (
    AuditLog,
    AuditTamperError,
    BreakGlassError,
    CompositeTrustGate,
    Decision,
    InputVector,
    TrustMonitor,
    UnauthorizedOverrideError,
    validate_and_normalize_config,
)
from resontinex.trust.audit import GENESIS_HASH
from resontinex.trust.composite_trust_gate import break_glass_override


@pytest.fixture
def blocked_gate() -> CompositeTrustGate:
    config = validate_and_normalize_config({"break_glass": {"authorized_operators": ["ops_lead"]}})
    gate = CompositeTrustGate(InputVector(0.1, 0.9, 0.5), config)
    assert gate.decision is Decision.ABORT
    return gate


def test_authorised_override_is_recorded_and_expires(
    blocked_gate: CompositeTrustGate, audit_log: AuditLog, caplog: pytest.LogCaptureFixture
) -> None:
    now = [5000.0]
    with caplog.at_level(logging.CRITICAL, logger="resontinex.trust.breakglass"):
        record = break_glass_override(
            gate=blocked_gate,
            override_reason="critical_system_recovery",
            operator_id="ops_lead",
            audit_log=audit_log,
            ttl_seconds=60,
            clock=lambda: now[0],
        )
    assert record.effective_decision(now=5059.0) is Decision.EXECUTE
    assert record.effective_decision(now=5060.0) is Decision.ABORT
    assert record.is_active(now=5000.0)
    assert not record.is_active(now=6000.0)
    assert record.original_decision is Decision.ABORT
    with pytest.raises(AttributeError):
        record.granted_decision = Decision.ABORT  # type: ignore[misc]
    (entry,) = audit_log.records()
    assert entry["event"] == "break_glass_granted"
    assert entry["operator_id"] == "ops_lead"
    assert entry["hash"] == record.audit_hash
    assert entry["prev_hash"] == GENESIS_HASH
    assert audit_log.verify().ok
    critical = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert critical
    assert json.loads(critical[0].getMessage())["event"] == "break_glass_granted"
    assert json.dumps(record.as_dict())


def test_unauthorised_operator_is_refused_logged_counted_and_audited(
    blocked_gate: CompositeTrustGate, audit_log: AuditLog, caplog: pytest.LogCaptureFixture
) -> None:
    registry = CollectorRegistry()
    monitor = TrustMonitor(config=blocked_gate.config, registry=registry)
    with (
        caplog.at_level(logging.ERROR, logger="resontinex.trust.breakglass"),
        pytest.raises(UnauthorizedOverrideError, match="mallory"),
    ):
        monitor.break_glass_override(blocked_gate, "let me in", "mallory", audit_log=audit_log)
    assert registry.get_sample_value("trust_gate_break_glass_total", {"outcome": "refused"}) == 1
    assert any("break_glass_refused" in r.getMessage() for r in caplog.records)
    assert [r["event"] for r in audit_log.records()] == ["break_glass_refused"]
    monitor.break_glass_override(
        blocked_gate, "approved incident 42", "ops_lead", audit_log=audit_log
    )
    assert registry.get_sample_value("trust_gate_break_glass_total", {"outcome": "granted"}) == 1
    assert audit_log.verify().ok
    assert audit_log.verify().records == 2


def test_default_config_authorises_nobody(audit_log: AuditLog) -> None:
    gate = CompositeTrustGate(InputVector(0.1, 0.9, 0.5))
    with pytest.raises(UnauthorizedOverrideError):
        break_glass_override(gate, "critical_system_recovery", "ops_team_lead", audit_log=audit_log)


def test_callable_authoriser_gets_the_token_which_is_never_logged(
    blocked_gate: CompositeTrustGate, audit_log: AuditLog, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[tuple[str, str | None]] = []

    def authoriser(operator: str, token: str | None) -> bool:
        seen.append((operator, token))
        return token == "s3cret-token"

    with caplog.at_level(logging.DEBUG):
        record = break_glass_override(
            blocked_gate,
            "incident",
            "alice",
            operator_token="s3cret-token",
            authorizer=authoriser,
            audit_log=audit_log,
        )
        with pytest.raises(UnauthorizedOverrideError):
            break_glass_override(
                blocked_gate,
                "incident",
                "alice",
                operator_token="wrong-token",
                authorizer=authoriser,
                audit_log=audit_log,
            )
    assert record.operator_id == "alice"
    assert seen[0] == ("alice", "s3cret-token")
    assert "s3cret-token" not in caplog.text
    assert "wrong-token" not in caplog.text
    assert "s3cret-token" not in audit_log.path.read_text()


def test_failing_authoriser_refuses(blocked_gate: CompositeTrustGate, audit_log: AuditLog) -> None:
    def broken(operator: str, token: str | None) -> bool:
        raise RuntimeError("directory down")

    with pytest.raises(UnauthorizedOverrideError):
        break_glass_override(
            blocked_gate, "incident", "ops_lead", authorizer=broken, audit_log=audit_log
        )


def test_allow_list_argument_overrides_config(
    blocked_gate: CompositeTrustGate, audit_log: AuditLog
) -> None:
    with pytest.raises(UnauthorizedOverrideError):
        break_glass_override(
            blocked_gate, "incident", "ops_lead", authorizer={"bob"}, audit_log=audit_log
        )
    assert break_glass_override(
        blocked_gate, "incident", "bob", authorizer={"bob"}, audit_log=audit_log
    )


def test_audit_log_path_from_config(tmp_path: Path) -> None:
    path = tmp_path / "cfg-audit.jsonl"
    config = validate_and_normalize_config(
        {"break_glass": {"authorized_operators": ["ops"], "audit_log_path": str(path)}}
    )
    gate = CompositeTrustGate(InputVector(0.1, 0.9, 0.5), config)
    break_glass_override(gate, "incident", "ops")
    assert AuditLog(path).verify().ok


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"override_reason": ""}, "override_reason"),
        ({"override_reason": "   "}, "override_reason"),
        ({"override_reason": None}, "override_reason"),
        ({"override_reason": "x" * 5000}, "override_reason"),
        ({"override_reason": "line\ninjection"}, "override_reason"),
        ({"operator_id": ""}, "operator_id"),
        ({"operator_id": 42}, "operator_id"),
        ({"ttl_seconds": 0}, "ttl_seconds"),
        ({"ttl_seconds": -5}, "ttl_seconds"),
        ({"ttl_seconds": 10**9}, "ttl_seconds"),
        ({"ttl_seconds": float("nan")}, "ttl_seconds"),
        ({"ttl_seconds": True}, "ttl_seconds"),
        ({"gate": "not a gate"}, "gate"),
    ],
)
def test_bad_arguments_are_refused(
    blocked_gate: CompositeTrustGate, audit_log: AuditLog, kwargs: dict[str, object], match: str
) -> None:
    args: dict[str, object] = {
        "gate": blocked_gate,
        "override_reason": "incident",
        "operator_id": "ops_lead",
        "audit_log": audit_log,
        **kwargs,
    }
    with pytest.raises(BreakGlassError, match=match):
        break_glass_override(**args)  # type: ignore[arg-type]
    assert audit_log.records() == []


def test_no_audit_log_no_break_glass(blocked_gate: CompositeTrustGate) -> None:
    with pytest.raises(BreakGlassError, match="audit log"):
        break_glass_override(blocked_gate, "incident", "ops_lead")


def _grant_three(gate: CompositeTrustGate, log: AuditLog) -> None:
    for i in range(3):
        break_glass_override(gate, f"incident {i}", "ops_lead", audit_log=log)


def _rewrite(log: AuditLog, lines: list[str]) -> None:
    log.path.write_text("".join(lines))


def test_edit_is_detected(blocked_gate: CompositeTrustGate, audit_log: AuditLog) -> None:
    _grant_three(blocked_gate, audit_log)
    lines = audit_log.path.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace("incident 1", "incident X")
    _rewrite(audit_log, lines)
    result = audit_log.verify()
    assert not result.ok
    assert result.line == 2
    assert "edited" in (result.problem or "")
    with pytest.raises(AuditTamperError, match="line 2"):
        audit_log.ensure_intact()


def test_edit_with_recomputed_hash_breaks_the_chain(
    blocked_gate: CompositeTrustGate, audit_log: AuditLog
) -> None:
    from resontinex.trust.audit import record_hash

    _grant_three(blocked_gate, audit_log)
    records = audit_log.records()
    records[0]["operator_id"] = "mallory"
    records[0]["hash"] = record_hash(records[0])
    _rewrite(audit_log, [json.dumps(r) + "\n" for r in records])
    result = audit_log.verify()
    assert not result.ok
    assert result.line == 2
    assert "prev_hash" in (result.problem or "")


def test_deletions_are_detected(blocked_gate: CompositeTrustGate, audit_log: AuditLog) -> None:
    _grant_three(blocked_gate, audit_log)
    lines = audit_log.path.read_text().splitlines(keepends=True)
    _rewrite(audit_log, [lines[0], lines[2]])
    assert not audit_log.verify().ok  # a middle record
    _rewrite(audit_log, lines[:2])
    tail = audit_log.verify()
    assert not tail.ok
    assert "head file" in (tail.problem or "")
    _rewrite(audit_log, lines)
    assert audit_log.verify().ok
    audit_log.head_path.unlink()
    assert not audit_log.verify().ok  # the head itself


def test_garbage_and_appending_to_a_tampered_log(
    blocked_gate: CompositeTrustGate, audit_log: AuditLog
) -> None:
    _grant_three(blocked_gate, audit_log)
    lines = audit_log.path.read_text().splitlines(keepends=True)
    _rewrite(audit_log, [*lines[:2], "{not json\n"])
    assert audit_log.verify().line == 3
    with pytest.raises(AuditTamperError):
        break_glass_override(blocked_gate, "incident", "ops_lead", audit_log=audit_log)
    _rewrite(audit_log, lines[:2])
    with pytest.raises(AuditTamperError):  # the head says 3 records; the tail says 2
        break_glass_override(blocked_gate, "incident", "ops_lead", audit_log=audit_log)
    _rewrite(audit_log, lines)
    break_glass_override(blocked_gate, "incident", "ops_lead", audit_log=audit_log)
    assert audit_log.verify().records == 4


def test_reserved_keys_cannot_be_forged(audit_log: AuditLog) -> None:
    from resontinex.trust import AuditLogError

    with pytest.raises(AuditLogError, match="reserved"):
        audit_log.append("custom", {"prev_hash": GENESIS_HASH})
    record = audit_log.append("custom", {"note": "ok"})
    assert record["seq"] == 0
    assert audit_log.verify().ok
