"""The ``hbt`` CLI fails closed: read-only log verification that refuses foreign, empty and
truncated files (exit 2) and detects truncation behind a known checkpoint (exit 1); calibrated
``compare`` with validated arguments."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from hbt_core.auditlog import AuditLog
from hbt_core.cli import main
from hbt_core.errors import AuditLogFormatError
from hbt_core.keys import load_private_key


def _log(db: str | Path, key: Path, entries: int = 6) -> str | Path:
    with AuditLog(db, load_private_key(key)) as log:
        for i in range(entries):
            log.append({"i": i})
        log.checkpoint()
    return db


def test_log_verify_refuses_files_that_are_not_audit_logs(
    tmp_path: Path, key_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    foreign = tmp_path / "foreign.sqlite"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE users (name TEXT)")
    con.commit()
    con.close()
    text = tmp_path / "notes.sqlite"
    text.write_text("not a database at all " * 200)
    for path in (empty, foreign, text):
        before = path.read_bytes()
        assert main(["log-verify", "--db", str(path)]) == 2, path
        assert "status: ok" not in capsys.readouterr().out
        assert path.read_bytes() == before  # nothing written into the file
    con = sqlite3.connect(foreign)
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
    con.close()
    assert tables == {"users"}
    # a writer refuses a foreign database too, instead of adding its tables to it
    with pytest.raises(AuditLogFormatError, match="not an hbt audit log"):
        AuditLog(foreign)


def test_log_verify_on_a_truncated_file_is_exit_2(tmp_path: Path, key_path: Path) -> None:
    db = Path(_log(tmp_path / "audit.sqlite", key_path, entries=400))
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    data = db.read_bytes()
    assert len(data) > 8192
    for cut in (100, len(data) // 2, len(data) - 1024):
        db.write_bytes(data[:cut])
        assert main(["log-verify", "--db", str(db)]) == 2, cut


def test_log_verify_is_read_only(tmp_path: Path, key_path: Path) -> None:
    db = Path(_log(tmp_path / "audit.sqlite", key_path))
    with AuditLog(db, read_only=True) as log:
        assert log.verify()["entries"] == 6
        with pytest.raises(ValueError, match="read-only"):
            log.append({"x": 1})
    db.chmod(0o444)
    try:
        assert main(["log-verify", "--db", str(db), "--public-key", f"{key_path}.pub"]) == 0
    finally:
        db.chmod(0o644)


def test_expect_checkpoint_detects_truncation_behind_it(
    audit_target: str | Path,
    tamper: Callable[..., None],
    tmp_path: Path,
    key_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = _log(audit_target, key_path)
    capsys.readouterr()
    assert main(["--output-format", "json", "log-verify", "--db", str(db)]) == 0
    seen = json.loads(capsys.readouterr().out)["latest_checkpoint"]
    assert seen["size"] == 6
    cp_file = tmp_path / "cp.json"
    cp_file.write_text(json.dumps(seen))
    pub = f"{key_path}.pub"
    args = ["log-verify", "--db", str(db), "--public-key", pub, "--expect-checkpoint"]
    assert main([*args, str(cp_file)]) == 0
    # cut the log back to 3 entries and drop the checkpoints that would betray it
    tamper("DELETE FROM {entries} WHERE idx >= 3")
    tamper("DELETE FROM {checkpoints}")
    if not isinstance(db, Path):  # PostgreSQL's head row witnesses the size: forge it too
        tamper("UPDATE hbt_audit_head SET size = 3")
    assert main(["log-verify", "--db", str(db), "--public-key", pub]) == 0  # self-consistent
    assert main([*args, str(cp_file)]) == 1
    assert "truncated" in capsys.readouterr().out
    # a forged expected checkpoint fails its signature; a malformed one is an input error
    forged = dict(seen, size=3)
    cp_file.write_text(json.dumps(forged))
    assert main([*args, str(cp_file)]) == 1
    cp_file.write_text("{not json")
    assert main([*args, str(cp_file)]) == 2
    cp_file.write_text(json.dumps({"size": "x"}))
    assert main([*args, str(cp_file)]) == 2


@pytest.fixture(scope="module")
def fingerprints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("fp")
    runs = {"ref": ("base", 0), "n1": ("base", 1), "n2": ("base", 2), "n3": ("base", 3)}
    runs |= {"same": ("base", 5), "finetuned": ("finetuned", 5), "other_ref": ("base", 9)}
    paths = {}
    for name, (fixture, seed) in runs.items():
        paths[name] = out / f"{name}.npz"
        argv = ["fingerprint", "--fixture", fixture, "--out", str(paths[name])]
        assert main([*argv, "--probes", "32", "--run-seed", str(seed)]) == 0
    return paths


def test_compare_uses_the_calibrated_threshold(
    fingerprints: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = {k: str(v) for k, v in fingerprints.items()}
    cal = tmp_path / "cal.json"
    assert main(["calibrate", f["ref"], f["n1"], f["n2"], f["n3"], "--out", str(cal)]) == 0
    capsys.readouterr()
    compare = ["--output-format", "json", "compare", f["ref"]]
    assert main([*compare, f["same"], "--calibration", str(cal)]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "same"
    # the old hard-coded 0.85 called the fine-tuned model "same"; the calibration does not
    assert main([*compare, f["finetuned"], "--threshold", "0.85"]) == 0
    capsys.readouterr()
    assert main([*compare, f["finetuned"], "--calibration", str(cal)]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"] == "different"
    assert out["threshold_source"] == "calibration"
    assert out["similarity"] < out["threshold"]


@pytest.mark.parametrize("threshold", ["nan", "inf", "-1", "0.5", "1.01", "abc"])
def test_compare_rejects_bad_thresholds(fingerprints: dict[str, Path], threshold: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "compare",
                str(fingerprints["ref"]),
                str(fingerprints["same"]),
                "--threshold",
                threshold,
            ]
        )
    assert exc.value.code == 2


def test_calibration_inputs_are_validated(fingerprints: dict[str, Path], tmp_path: Path) -> None:
    f = {k: str(v) for k, v in fingerprints.items()}
    cal = tmp_path / "cal.json"
    with pytest.raises(SystemExit) as exc:
        main(["compare", f["ref"], f["same"]])  # neither a calibration nor a threshold
    assert exc.value.code == 2
    # nulls must be the reference model under other run seeds
    assert main(["calibrate", f["ref"], f["ref"], f["n1"], "--out", str(cal)]) == 2
    assert main(["calibrate", f["ref"], f["n1"], f["finetuned"], "--out", str(cal)]) == 2
    assert main(["calibrate", f["ref"], f["n1"], f["n2"], "--out", str(cal)]) == 0
    # a calibration learned on another reference is refused
    assert main(["compare", f["other_ref"], f["same"], "--calibration", str(cal)]) == 2
    good = json.loads(cal.read_text())
    for bad in (
        {**good, "score_threshold": float("nan")},
        {**good, "score_threshold": 1.5},
        {**good, "null_scores": [0.9]},
        {**good, "format": 99},
        {k: v for k, v in good.items() if k != "p0"},
    ):
        cal.write_text(json.dumps(bad))
        assert main(["compare", f["ref"], f["same"], "--calibration", str(cal)]) == 2, bad
    cal.write_text("{")
    assert main(["compare", f["ref"], f["same"], "--calibration", str(cal)]) == 2
