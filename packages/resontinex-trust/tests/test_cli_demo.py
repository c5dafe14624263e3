"""The resontinex-trust CLI (exit codes, formats) and the demo showcase."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from resontinex.trust import AuditLog, CalibrationAdapter
from resontinex.trust.cli import main
from resontinex.trust.demo import showcase
from resontinex.trust.synthetic import miscalibrated_scores


def test_evaluate_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "0.8", "0.3", "0.2"]) == 0
    assert "decision: EXECUTE" in capsys.readouterr().out
    assert main(["evaluate", "0.1", "0.9", "0.5", "--output-format", "json"]) == 1  # ABORT
    explanation = json.loads(capsys.readouterr().out)
    assert explanation["risk_assessment"]["decision"] == "abort"


def test_evaluate_with_config_and_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "gate.yaml"
    path.write_text("trust_floor: 0.8\nenvironments:\n  production:\n    trust_floor: 0.5\n")
    assert (
        main(["evaluate", "0.8", "0.3", "0.2", "--config", str(path), "--output-format", "json"])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["risk_assessment"]["rule_fired"] == "trust_floor"
    main(["evaluate", "0.8", "0.3", "0.2", "--config", str(path), "--environment", "production"])
    assert "rule: tier_action" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate", "1.5", "0.3", "0.2"],
        ["evaluate", "nan", "0.3", "0.2"],
        ["evaluate", "0.8", "0.3", "0.2", "--config", "/nonexistent/gate.yaml"],
    ],
)
def test_bad_input_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["evaluate", "abc", "0.3", "0.2"], ["evaluate", "0.8"], []])
def test_usage_errors_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2


def test_calibrate_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scores, labels = miscalibrated_scores(3000, seed=31)
    csv = tmp_path / "scores.csv"
    csv.write_text(
        "score,label\n" + "".join(f"{s!r},{y}\n" for s, y in zip(scores, labels, strict=True))
    )
    model = tmp_path / "calibrator.json"
    assert main(["calibrate", str(csv), "--save", str(model), "--output-format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["heldout"]["after"]["ece"] < result["heldout"]["before"]["ece"]
    assert CalibrationAdapter.from_json(model.read_text()).is_fitted
    plot = tmp_path / "reliability.png"
    assert main(["calibrate", str(csv), "--method", "platt", "--plot", str(plot)]) == 0
    assert "ECE   before" in capsys.readouterr().out
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert not plot.exists()
    else:
        assert plot.read_bytes()[:4] == b"\x89PNG"
    assert main(["evaluate", "0.8", "0.3", "0.2", "--calibrator", str(model)]) in (0, 1)


@pytest.mark.parametrize(
    ("content", "code"),
    [
        ("score,label\n0.5,1\n0.4,0\n", 1),  # too few rows: fit refused, a verdict
        ("value,outcome\n0.5,1\n", 2),
        ("score,label\nabc,1\n", 2),
        ("score,label\n0.5,maybe\n", 2),
        ("score,label\n1.5,1\n" * 100, 2),
    ],
)
def test_calibrate_bad_csv(tmp_path: Path, content: str, code: int) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text(content)
    assert main(["calibrate", str(csv)]) == code


def test_validate_config_and_verify_audit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("trust_floor: 0.7\n")
    assert main(["validate-config", str(good)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("trust_floor: 7\n")
    assert main(["validate-config", str(bad)]) == 2
    assert "trust_floor" in capsys.readouterr().err
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append("note", {"text": "hello"})
    assert main(["verify-audit", str(log.path)]) == 0
    log.path.write_text(log.path.read_text().replace("hello", "HELLO"))
    assert main(["verify-audit", str(log.path), "--output-format", "json"]) == 1


def test_console_script_help() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "resontinex.trust.cli", "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 0
    assert "evaluate" in proc.stdout


def test_showcase(tmp_path: Path) -> None:
    summary = showcase(tmp_path / "demo")
    for decision in ("EXECUTE", "REVIEW", "DEFER", "ABORT"):
        assert decision in summary
    for rule in ("trust_floor", "entropy_threshold", "tier_action"):
        assert rule in summary
    assert "verdicts:" in summary.splitlines()
    assert "UNEXPECTED" not in summary
    records = json.loads((tmp_path / "demo" / "decisions.json").read_text())
    assert {r["risk_assessment"]["decision"] for r in records} == {
        "execute",
        "review",
        "defer",
        "abort",
    }
    calibration = json.loads((tmp_path / "demo" / "calibration.json").read_text())
    assert calibration["after"]["ece"] <= 0.5 * calibration["before"]["ece"]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "skipped" in summary
    else:
        assert (tmp_path / "demo" / "reliability.png").read_bytes()[:4] == b"\x89PNG"


def test_demo_entry_point_is_registered() -> None:
    from importlib.metadata import entry_points

    (entry,) = [e for e in entry_points(group="resontinex.demo") if e.name == "resontinex-trust"]
    assert entry.load() is showcase


def test_calibrate_refuses_a_huge_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import resontinex.trust.cli as cli

    monkeypatch.setattr(cli, "MAX_CSV_ROWS", 5)
    csv = tmp_path / "big.csv"
    csv.write_text("score,label\n" + "0.5,1\n" * 6)
    assert main(["calibrate", str(csv)]) == 2
