"""Issue 15: a bad number, a broken calibrator or a missing file never ends in EXECUTE or "ok".

Each test here failed before its fix; the mutants named in the issue (gate ``score < floor`` →
``<=``, breaker ``>`` → ``>=``) are killed by the tests exactly at the threshold.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from resontinex.trust import (
    AuditLog,
    AuditLogError,
    AuditTamperError,
    BreakGlassError,
    CalibratedScoreError,
    CalibrationAdapter,
    CalibrationError,
    CompositeTrustGate,
    Decision,
    InputVector,
    RiskTier,
    TrustConfig,
    TrustConfigError,
    TrustInputError,
    TrustMonitor,
    evaluate_batch,
    validate_and_normalize_config,
)
from resontinex.trust.audit import record_hash
from resontinex.trust.cli import main
from resontinex.trust.composite_trust_gate import break_glass_override, sigmoid

np = pytest.importorskip("numpy")

# The audit's row: every signal says "do not trust", so a calibrator must not turn it into PASS.
DISTRUSTED = (0.05, 0.95, 0.1)
BAD_CALIBRATED = [math.nan, math.inf, -math.inf, 1.7, -0.1, 1e308, "0.9", True]


# ------------------------------------------------------------ calibrated scores


@pytest.mark.parametrize("bad", BAD_CALIBRATED)
def test_a_bad_calibrated_score_is_refused_on_the_scalar_path(
    config: TrustConfig, fixed_calibrator: Any, bad: object
) -> None:
    with pytest.raises(CalibratedScoreError, match="calibrated_trust_score") as caught:
        CompositeTrustGate(InputVector(*DISTRUSTED), config, fixed_calibrator(bad))
    assert repr(bad) in str(caught.value)


@pytest.mark.parametrize("bad", BAD_CALIBRATED)
def test_a_bad_calibrated_score_is_refused_on_the_batch_path(
    config: TrustConfig, fixed_calibrator: Any, bad: object
) -> None:
    rows = [[0.9, DISTRUSTED[0]], [0.1, DISTRUSTED[1]], [0.1, DISTRUSTED[2]]]
    with pytest.raises(CalibratedScoreError, match=r"trust_scores\[0\]"):
        evaluate_batch(*(np.array(col) for col in rows), config, fixed_calibrator(bad))


class ArrayCalibrator:
    """A vectorised calibrator whose answer for one row is ``bad`` (identity elsewhere)."""

    is_fitted = True

    def __init__(self, row: int, bad: float) -> None:
        self.row, self.bad = row, bad

    def predict(self, score: float) -> float:
        return score

    def predict_many(self, scores: Any) -> Any:
        out = np.array(scores, dtype=float)
        out[self.row] = self.bad
        return out


@pytest.mark.parametrize("bad", [math.nan, 1.7, -1e-9])
def test_predict_many_output_is_held_to_the_same_rule(config: TrustConfig, bad: float) -> None:
    a = np.array([0.9, 0.8, DISTRUSTED[0], 0.7])
    r = np.array([0.1, 0.2, DISTRUSTED[1], 0.3])
    c = np.array([0.1, 0.1, DISTRUSTED[2], 0.2])
    with pytest.raises(CalibratedScoreError, match=r"trust_scores\[2\]"):
        evaluate_batch(a, r, c, config, ArrayCalibrator(2, bad))  # type: ignore[arg-type]


def test_predict_many_of_the_wrong_shape_or_type_is_refused(config: TrustConfig) -> None:
    class Short(ArrayCalibrator):
        def predict_many(self, scores: Any) -> Any:
            return np.asarray(scores)[:-1]

    class Text(ArrayCalibrator):
        def predict_many(self, scores: Any) -> Any:
            return ["0.5"] * len(scores)

    ones = np.full(3, 0.5)
    for calibrator in (Short(0, 0.0), Text(0, 0.0)):
        with pytest.raises(CalibratedScoreError, match="trust_scores"):
            evaluate_batch(ones, ones, ones, config, calibrator)  # type: ignore[arg-type]


@pytest.mark.parametrize("good", [0.0, 1.0, 0.6, 1])
def test_valid_calibrated_scores_still_decide_on_both_paths(
    config: TrustConfig, fixed_calibrator: Any, good: float
) -> None:
    gate = CompositeTrustGate(InputVector(*DISTRUSTED), config, fixed_calibrator(good))
    assert gate.trust_score == good
    assert gate.calibrated_trust_score == good
    batch = evaluate_batch(*(np.array([v]) for v in DISTRUSTED), config, fixed_calibrator(good))
    assert (batch.tiers[0], batch.decisions[0]) == (gate.risk_tier, gate.decision)


def test_numpy_scalars_from_a_calibrator_are_accepted(
    config: TrustConfig, fixed_calibrator: Any
) -> None:
    gate = CompositeTrustGate(InputVector(*DISTRUSTED), config, fixed_calibrator(np.float32(0.2)))
    assert type(gate.trust_score) is float
    assert gate.risk_tier is RiskTier.BLOCK


def test_a_nan_calibrator_is_a_service_error_in_the_monitor(fixed_calibrator: Any) -> None:
    registry = CollectorRegistry()
    monitor = TrustMonitor(registry=registry, calibrator=fixed_calibrator(math.nan))
    with pytest.raises(CalibratedScoreError):
        monitor.evaluate(*DISTRUSTED)
    assert registry.get_sample_value("trust_gate_evaluation_errors_total") == 1
    assert monitor.get_health_status()["error_count"] == 1


# ------------------------------------------------------------ mutants at the thresholds


def test_a_score_exactly_at_the_floor_meets_it(config: TrustConfig, fixed_calibrator: Any) -> None:
    floor = config.trust_floor
    at = CompositeTrustGate(InputVector(0.5, 0.5, 0.1), config, fixed_calibrator(floor))
    assert at.risk_tier is RiskTier.MONITOR
    assert (at.decision, at.rule_fired, at.floor_met) == (Decision.EXECUTE, "tier_action", True)
    below = math.nextafter(floor, 0.0)
    under = CompositeTrustGate(InputVector(0.5, 0.5, 0.1), config, fixed_calibrator(below))
    assert (under.decision, under.rule_fired, under.floor_met) == (
        Decision.REVIEW,
        "trust_floor",
        False,
    )


def test_a_raw_score_exactly_at_the_floor_meets_it_on_both_paths(config: TrustConfig) -> None:
    # Three equal transformed signals of 0.6: sigmoid(logit(0.6)) is 0.6 to the last bit.
    for a, decision, rule in (
        (0.6, Decision.EXECUTE, "tier_action"),
        (math.nextafter(0.6, 0.0), Decision.REVIEW, "trust_floor"),
    ):
        gate = CompositeTrustGate(InputVector(a, 0.4, 0.4), config)
        assert (gate.raw_trust_score == config.trust_floor) is (a == 0.6)
        assert (gate.decision, gate.rule_fired) == (decision, rule)
        batch = evaluate_batch(np.array([a]), np.array([0.4]), np.array([0.4]), config)
        assert (batch.decisions[0], batch.rules[0]) == (decision, rule)


def _fail(monitor: TrustMonitor, switch: Any, times: int) -> None:
    switch.broken = True
    for _ in range(times):
        with pytest.raises(RuntimeError):
            monitor.evaluate(0.9, 0.1, 0.1)
    switch.broken = False


def test_breaker_stays_closed_exactly_at_its_threshold(switch: Any) -> None:
    monitor = TrustMonitor(
        config={"monitor": {"min_samples": 10, "circuit_breaker_error_rate": 0.5}},
        calibrator=switch,
    )
    for _ in range(5):
        monitor.evaluate(0.9, 0.1, 0.1)
    _fail(monitor, switch, 5)  # 5 errors in 10 events: exactly 50 %, not above it
    assert not monitor.circuit_open
    assert monitor.evaluate(0.9, 0.1, 0.1).decision is Decision.EXECUTE  # 5 / 11
    _fail(monitor, switch, 2)  # 7 / 13 > 50 %
    assert monitor.circuit_open
    assert monitor.evaluate(0.9, 0.1, 0.1).rule_fired == "circuit_breaker"


# ------------------------------------------------------------ caller errors vs service errors


def test_a_burst_of_bad_caller_input_does_not_open_the_breaker_for_everyone() -> None:
    registry = CollectorRegistry()
    monitor = TrustMonitor(registry=registry, config={"monitor": {"min_samples": 10}})
    for _ in range(30):
        with pytest.raises(TrustInputError):
            monitor.evaluate(math.nan, 0.1, 0.1)
    assert not monitor.circuit_open
    gate = monitor.evaluate(0.9, 0.1, 0.1)
    assert (gate.decision, gate.rule_fired) == (Decision.EXECUTE, "tier_action")
    status = monitor.get_health_status()
    assert status["status"] == "healthy"
    assert (status["error_count"], status["rejected_count"]) == (0, 30)
    assert registry.get_sample_value("trust_gate_input_rejections_total") == 30
    assert registry.get_sample_value("trust_gate_evaluation_errors_total") == 0


# ------------------------------------------------------------ overflow and unvalidated floats


def test_exported_sigmoid_is_total_and_monotone() -> None:
    assert sigmoid(-800.0) == 0.0 or 0.0 < sigmoid(-800.0) < 1e-300
    assert sigmoid(800.0) == 1.0
    assert sigmoid(-math.inf) == 0.0
    assert sigmoid(math.inf) == 1.0
    assert sigmoid(0.0) == 0.5
    # Across the point where exp(-z) starts to overflow, ulp by ulp.
    z = -math.log(sys.float_info.max)
    for _ in range(500):
        z = math.nextafter(z, 0.0)
    previous = sigmoid(z)
    for _ in range(1000):
        z = math.nextafter(z, -math.inf)
        current = sigmoid(z)
        assert 0.0 <= current <= previous
        previous = current
    with pytest.raises(OverflowError):
        math.exp(-z)  # the scan did cross the overflow point
    with pytest.raises(TrustInputError, match="z"):
        sigmoid(math.nan)


@pytest.mark.parametrize(
    ("raw", "key_path"),
    [
        ({"weights": {"alignment_score": 1e308, "epistemic_risk": 1e308}}, "weights.alignment"),
        ({"weights": {"confidence_band": 10**400}}, "weights.confidence_band"),
        ({"trust_floor": 10**400}, "trust_floor"),
        ({"monitor": {"window_seconds": -(10**400)}}, "monitor.window_seconds"),
        ({"monitor": {"min_samples": 50, "window_max_events": 20}}, "monitor.min_samples"),
    ],
)
def test_huge_numbers_in_a_config_are_typed_errors(raw: dict[str, Any], key_path: str) -> None:
    with pytest.raises(TrustConfigError) as caught:
        validate_and_normalize_config(raw)
    assert caught.value.key_path.startswith(key_path)


def test_calibration_inputs_that_overflow_are_typed_errors() -> None:
    with pytest.raises(CalibrationError, match=r"scores\[1\]"):
        CalibrationAdapter().fit([0.5, 10**400], [0, 1])
    scores = [i / 100 for i in range(100)]
    labels = [i % 2 for i in range(100)]
    adapter = CalibrationAdapter("platt")
    assert adapter.fit(scores, labels)
    for n_bins in (0, -3, 2.5, True):
        with pytest.raises(CalibrationError, match="n_bins"):
            adapter.report(scores, labels, n_bins=n_bins)  # type: ignore[arg-type]


def test_isotonic_knots_a_subnormal_apart_never_predict_nan() -> None:
    adapter = CalibrationAdapter.from_json(
        json.dumps(
            {
                "format": "resontinex-trust/calibrator",
                "format_version": 1,
                "method": "isotonic",
                "fitted_method": "isotonic",
                "platt": None,
                "knots_x": [0.0, 5e-324, 1e-323, 0.5],
                "knots_y": [0.0, 0.1, 0.9, 1.0],
                "min_samples": 50,
                "isotonic_min_samples": 500,
            }
        )
    )
    for score in (5e-324, 1e-323, 0.25):
        value = adapter.predict(score)
        assert value is not None
        assert 0.0 <= value <= 1.0


def test_break_glass_refuses_a_clock_that_is_not_a_time(tmp_path: Path) -> None:
    config = validate_and_normalize_config({"break_glass": {"authorized_operators": ["ops"]}})
    gate = CompositeTrustGate(InputVector(0.1, 0.9, 0.5), config)
    log = AuditLog(tmp_path / "audit.jsonl")
    for bad in (math.nan, math.inf):
        with pytest.raises(BreakGlassError, match="clock"):
            break_glass_override(gate, "incident", "ops", audit_log=log, clock=lambda b=bad: b)
    assert log.records() == []


# ------------------------------------------------------------ explain() claims


def test_explain_claims_only_what_holds(config: TrustConfig, fixed_calibrator: Any) -> None:
    plain = CompositeTrustGate(InputVector(0.8, 0.3, 0.2), config).explain()
    guarantees = plain["mathematical_guarantees"]
    assert guarantees["monotone_in"]["alignment_score"] == "non-decreasing"
    assert guarantees["deterministic"] is True
    assert guarantees["weights_non_negative_sum_to_one"] is True

    foreign = CompositeTrustGate(InputVector(0.8, 0.3, 0.2), config, fixed_calibrator(0.4))
    guarantees = foreign.explain()["mathematical_guarantees"]
    assert set(guarantees["monotone_in"].values()) == {"unverified"}
    assert guarantees["deterministic"] is None
    assert "FixedCalibrator" in guarantees["basis"]


def test_explain_reports_the_calibrated_score_that_decided(config: TrustConfig) -> None:
    class Drifting:
        """Answers a different value on every call: explain() must not ask it again."""

        def __init__(self) -> None:
            self.calls = 0

        def predict(self, score: float) -> float:
            self.calls += 1
            return 0.9 if self.calls == 1 else 0.1

    gate = CompositeTrustGate(InputVector(0.8, 0.3, 0.2), config, Drifting())
    aggregation = gate.explain()["aggregation"]
    assert aggregation["calibrated_trust_score"] == aggregation["trust_score"] == 0.9
    assert gate.risk_tier is RiskTier.PASS


def test_a_fitted_adapter_earns_the_claims_by_its_parameters(config: TrustConfig) -> None:
    scores = [i / 200 for i in range(200)]
    labels = [int(i > 90) for i in range(200)]
    adapter = CalibrationAdapter("platt")
    assert adapter.fit(scores, labels)
    assert adapter.is_monotone
    guarantees = CompositeTrustGate(InputVector(0.8, 0.3, 0.2), config, adapter).explain()[
        "mathematical_guarantees"
    ]
    assert guarantees["monotone_in"]["epistemic_risk"] == "non-increasing"
    assert guarantees["deterministic"] is True
    adapter.platt = (-1.0, 0.0)  # edited by hand: no longer order-preserving
    assert not adapter.is_monotone
    guarantees = CompositeTrustGate(InputVector(0.8, 0.3, 0.2), config, adapter).explain()[
        "mathematical_guarantees"
    ]
    assert set(guarantees["monotone_in"].values()) == {"not monotone"}


# ------------------------------------------------------------ audit log: crash and missing files

_CRASH = textwrap.dedent(
    """
    import os, sys
    from resontinex.trust.audit import AuditLog

    log = AuditLog(sys.argv[1])
    for i in range(int(sys.argv[2])):
        log.append("note", {"i": i})
    # The crash: the record line is written and fsync'ed, the process dies before the head moves.
    AuditLog._write_head = lambda self, records, head_hash: os._exit(17)
    log.append("break_glass_granted", {"i": "interrupted"})
    """
)


def _crash_during_append(path: Path, completed: int) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _CRASH, str(path), str(completed)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 17, proc.stderr


@pytest.mark.parametrize("completed", [0, 3])
def test_an_append_interrupted_before_its_head_update_is_recovered(
    tmp_path: Path, completed: int
) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    _crash_during_append(log.path, completed)
    assert len(log.records()) == completed + 1
    result = log.verify()
    assert result.ok, result.problem
    assert (result.records, result.unanchored) == (completed + 1, 1)
    assert main(["verify-audit", str(log.path)]) == 0
    record = log.append("note", {"i": "after the crash"})  # anchors the pending record first
    assert record["seq"] == completed + 1
    result = log.verify()
    assert (result.ok, result.records, result.unanchored) == (True, completed + 2, 0)


def _chained(log: AuditLog, event: str) -> str:
    last = log.records()[-1]
    record = {"seq": last["seq"] + 1, "event": event, "prev_hash": last["hash"]}
    record["hash"] = record_hash(record)
    return json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"


def test_two_records_ahead_of_the_head_are_refused(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    _crash_during_append(log.path, 2)
    with log.path.open("a") as handle:
        handle.write(_chained(log, "appended by someone else"))
    result = log.verify()
    assert not result.ok
    assert "head file" in (result.problem or "")
    with pytest.raises(AuditTamperError):
        log.append("note", {"i": "refused"})
    assert main(["verify-audit", str(log.path)]) == 1


@pytest.mark.parametrize("forgery", ["bad_hash", "bad_link", "bad_seq", "nan", "garbage"])
def test_a_forged_record_ahead_of_the_head_is_refused(tmp_path: Path, forgery: str) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    for i in range(2):
        log.append("note", {"i": i})
    last = log.records()[-1]
    record: dict[str, Any] = {"seq": 2, "event": "break_glass_granted", "prev_hash": last["hash"]}
    record["hash"] = record_hash(record)
    if forgery == "bad_hash":
        record["event"] = "edited after hashing"
    elif forgery == "bad_link":
        record["prev_hash"] = "f" * 64
        record["hash"] = record_hash(record)
    elif forgery == "bad_seq":
        record["seq"] = 3
        record["hash"] = record_hash(record)
    line = json.dumps(record) + "\n"
    if forgery == "nan":
        line = line.replace('"event": "break_glass_granted"', '"event": NaN')
    elif forgery == "garbage":
        line = '{"seq": 2, "truncat'
    with log.path.open("a") as handle:
        handle.write(line)
    assert not log.verify().ok
    with pytest.raises(AuditTamperError):
        log.append("note", {"i": "refused"})
    assert main(["verify-audit", str(log.path)]) == 1
    assert len(log.path.read_text().splitlines()) == 3  # nothing appended, nothing lost


def test_a_missing_log_is_an_error_unless_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.jsonl"
    assert main(["verify-audit", str(missing)]) == 2
    assert "missing.jsonl" in capsys.readouterr().err
    with pytest.raises(AuditLogError, match="does not exist"):
        AuditLog(missing).verify()
    assert main(["verify-audit", str(missing), "--allow-missing"]) == 0
    assert AuditLog(missing).verify(allow_missing=True).ok
    missing.write_bytes(b"")  # created, never written: no records and no head
    assert main(["verify-audit", str(missing)]) == 2


def test_deleting_the_log_and_its_head_does_not_pass(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    for i in range(3):
        log.append("note", {"i": i})
    assert main(["verify-audit", str(log.path)]) == 0
    log.path.unlink()  # the head remains: evidence that records existed
    assert main(["verify-audit", str(log.path), "--allow-missing"]) == 1
    assert not log.verify(allow_missing=True).ok
    log.head_path.unlink()
    assert main(["verify-audit", str(log.path)]) == 2


@pytest.mark.parametrize(
    "head", ['{"records": true, "head_hash": "%s"}', '{"records": -1, "head_hash": "%s"}', "[]"]
)
def test_a_malformed_head_file_is_tampering(tmp_path: Path, head: str) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    record = log.append("note", {"i": 0})
    log.head_path.write_text(head.replace("%s", record["hash"]) if "%s" in head else head)
    assert not log.verify().ok
    with pytest.raises(AuditTamperError):
        log.append("note", {"i": 1})


# ------------------------------------------------------------ CLI


@pytest.mark.parametrize(
    ("row", "shown"), [("nan", "nan"), ("inf", "inf"), ("1e999", "1e999"), ("-0.5", "-0.5")]
)
def test_calibrate_names_the_csv_line_of_a_bad_score(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], row: str, shown: str
) -> None:
    csv = tmp_path / "scores.csv"
    csv.write_text("score,label\n0.5,1\n0.4,0\n" + f"{row},1\n" + "0.3,0\n" * 60)
    assert main(["calibrate", str(csv)]) == 2
    err = capsys.readouterr().err
    assert f"scores.csv:4: score must be a finite probability in [0, 1], got '{shown}'" in err


def test_calibrate_names_a_missing_label(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "scores.csv"
    csv.write_text("score,label\n0.5,1\n0.4\n")
    assert main(["calibrate", str(csv)]) == 2
    assert "scores.csv:3: label" in capsys.readouterr().err


def test_unexpected_errors_exit_2_not_the_verdict_code(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import resontinex.trust.cli as cli

    def explode(args: object) -> int:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(cli, "_cmd_validate_config", explode)
    assert main(["validate-config", "any.yaml"]) == 2
    assert "disk on fire" in capsys.readouterr().err


def test_a_csv_field_over_the_csv_limit_is_an_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "scores.csv"
    csv.write_text("score,label\n0.5,1\n" + "9" * 200_000 + ",1\n")
    assert main(["calibrate", str(csv)]) == 2
    assert "scores.csv:3" in capsys.readouterr().err


def test_a_deeply_nested_calibrator_file_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="calibrator JSON"):
        CalibrationAdapter.from_json("[" * 200_000)
    path = tmp_path / "calibrator.json"
    path.write_text("[" * 200_000)
    assert main(["evaluate", "0.8", "0.3", "0.2", "--calibrator", str(path)]) == 2


# ------------------------------------------------------------ the same patterns elsewhere


def test_sigmoid_takes_any_real_and_only_reals() -> None:
    assert sigmoid(10**400) == 1.0
    assert sigmoid(-(10**400)) == 0.0
    assert sigmoid(3) == sigmoid(3.0)
    for bad in ("1", None, True):
        with pytest.raises(TrustInputError, match="z"):
            sigmoid(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["[" * 100_000, "version: .nan\n", "version: 1.0e+400\n"])
def test_config_files_that_break_the_parser_or_the_version_are_typed(
    tmp_path: Path, text: str
) -> None:
    from resontinex.trust import load_config

    path = tmp_path / "gate.yaml"
    path.write_text(text)
    with pytest.raises(TrustConfigError):
        load_config(path)


def test_break_glass_ttl_beyond_the_float_range_is_refused(tmp_path: Path) -> None:
    config = validate_and_normalize_config({"break_glass": {"authorized_operators": ["ops"]}})
    gate = CompositeTrustGate(InputVector(0.1, 0.9, 0.5), config)
    log = AuditLog(tmp_path / "audit.jsonl")
    with pytest.raises(BreakGlassError, match="ttl_seconds"):
        break_glass_override(gate, "incident", "ops", audit_log=log, ttl_seconds=10**400)
    assert log.records() == []


@pytest.mark.parametrize("payload", [{"value": math.nan}, {"value": object()}])
def test_an_unstorable_audit_payload_is_a_typed_error(
    tmp_path: Path, payload: dict[str, Any]
) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append("note", {"i": 0})
    with pytest.raises(AuditLogError, match="payload"):
        log.append("note", payload)
    result = log.verify()
    assert (result.ok, result.records) == (True, 1)


def test_calibrate_never_saves_a_calibrator_whose_final_fit_was_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Rows 1-4 of every 5 (the training split) rank well; every fifth row is inverted and
    # extreme, so the fit on all rows has a negative slope and is refused.
    rows = []
    for i in range(100):
        if i % 5:
            rows.append((0.55, 1) if i % 2 else (0.45, 0))
        else:
            rows.append((1e-6, 1) if (i // 5) % 2 else (1 - 1e-6, 0))
    csv = tmp_path / "scores.csv"
    csv.write_text("score,label\n" + "".join(f"{s!r},{y}\n" for s, y in rows))
    model = tmp_path / "calibrator.json"
    assert main(["calibrate", str(csv), "--method", "platt", "--save", str(model)]) == 1
    assert "not saved" in capsys.readouterr().out
    assert not model.exists()


def test_calibrate_json_is_valid_json_when_auc_is_undefined(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Held-out rows (every fifth) all have label 0: their AUC is undefined, reported as null.
    rows = [(0.3, 0) if i % 5 == 0 else ((0.7, 1) if i % 2 else (0.2, 0)) for i in range(200)]
    csv = tmp_path / "scores.csv"
    csv.write_text("score,label\n" + "".join(f"{s!r},{y}\n" for s, y in rows))
    assert main(["calibrate", str(csv), "--method", "platt", "--output-format", "json"]) == 0
    result = json.loads(capsys.readouterr().out, parse_constant=lambda name: pytest.fail(name))
    assert result["heldout"]["before"]["auc"] is None


@pytest.mark.parametrize(
    ("probs", "labels", "match"),
    [([math.nan, 0.5], [0, 1], r"scores\[0\]"), ([], [], "empty"), ([0.5, 1.5], [0, 1], "1.5")],
)
def test_calibration_report_validates_its_input(
    probs: list[float], labels: list[int], match: str
) -> None:
    from resontinex.trust import calibration_report

    with pytest.raises(CalibrationError, match=match):
        calibration_report(probs, labels)


def test_evaluate_refuses_an_unfitted_calibrator_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "calibrator.json"
    path.write_text(CalibrationAdapter("platt").to_json())  # never fitted: it would be ignored
    assert main(["evaluate", "0.1", "0.9", "0.5", "--calibrator", str(path)]) == 2
    assert "not fitted" in capsys.readouterr().err


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibration_is_monotone_to_the_last_bit(method: str) -> None:
    # The claim explain() makes for a CalibrationAdapter: adjacent raw scores never step back.
    import random

    from resontinex.trust.synthetic import miscalibrated_scores

    adapter = CalibrationAdapter(method)
    assert adapter.fit(*miscalibrated_scores(2000, seed=5))
    rng = random.Random(7)
    points = [rng.random() for _ in range(100_000)] + adapter.knots_x
    for s in points:
        assert adapter.predict(math.nextafter(s, 1.0)) >= adapter.predict(s)  # type: ignore[operator]
        assert adapter.predict(s) >= adapter.predict(math.nextafter(s, 0.0))  # type: ignore[operator]


def test_isotonic_never_steps_past_the_next_knot() -> None:
    # Just below 0.5 the fraction of the gap (0.15, 0.5) rounds to 1.0, and
    # 0.3398... + (0.8788... - 0.3398...) rounds one ulp above 0.8788...: the clamp holds it.
    y0, y1 = 0.3398233550130431, 0.8788128002554817
    adapter = CalibrationAdapter.from_json(
        json.dumps(
            {
                "format": "resontinex-trust/calibrator",
                "format_version": 1,
                "method": "isotonic",
                "fitted_method": "isotonic",
                "platt": None,
                "knots_x": [0.15, 0.5, 0.9],
                "knots_y": [y0, y1, 0.95],
                "min_samples": 50,
                "isotonic_min_samples": 500,
            }
        )
    )
    below = adapter.predict(math.nextafter(0.5, 0.0))
    assert below is not None
    assert below <= y1 == adapter.predict(0.5)
