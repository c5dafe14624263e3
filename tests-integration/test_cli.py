"""The umbrella command, as a user runs it."""

from __future__ import annotations

import json
import re
from importlib.metadata import version
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from resontinex.members import MEMBERS


def test_version_lists_every_member_with_its_installed_version(run_cli) -> None:
    proc = run_cli("version", "--output-format", "json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["resontinex"] == version("resontinex")
    assert {row["dist"]: row["version"] for row in report["members"]} == {
        m.dist: version(m.dist) for m in MEMBERS
    }


def test_version_text_names_each_member(run_cli) -> None:
    proc = run_cli("version")
    assert proc.returncode == 0
    for member in MEMBERS:
        assert member.dist in proc.stdout


def test_unknown_subcommand_is_a_usage_error(run_cli) -> None:
    proc = run_cli("no-such-command")
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr


@pytest.mark.slow
def test_demo_runs_every_installed_showcase_and_explains_each_verdict(demo) -> None:
    proc, _ = demo
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "Installed members:" in proc.stdout
    for member in MEMBERS:
        assert member.dist in proc.stdout
    # each showcase ends with its verdicts, and every one is the outcome its data is built for
    assert proc.stdout.count("verdicts:") >= len(MEMBERS) - 1  # cert-runtime has no showcase
    assert "UNEXPECTED" not in proc.stdout
    # no third-party chatter, warnings or tracebacks; one timing per showcase; no blank runs
    assert proc.stderr == ""
    assert "\n\n\n" not in proc.stdout
    assert proc.stdout.count(" s)") == 0  # times appear once, in the summary table
    summary = proc.stdout.split("== summary ==")[1]
    for name in ("pipeline", "fusion-ops", "hbt-core"):
        assert re.search(rf"^  {name} +\d+\.\d s  ", summary, re.MULTILINE), name


def _pipeline(demo) -> tuple[str, dict[str, dict]]:
    proc, out = demo
    section = proc.stdout.split("== pipeline ==")[1].split("\n== ")[0]
    results = json.loads((out / "pipeline" / "pipeline_results.json").read_text())
    return section, {r["case"]: r for r in results}


@pytest.mark.slow
def test_demo_pipeline_shows_execute_review_abort_and_the_drift_flip_with_reasons(demo) -> None:
    """Issue 19: every decision, each with the reason the reader sees, on every fresh run (the
    model is trained deterministically, so a fresh run is this run)."""
    section, cases = _pipeline(demo)
    known = cases["in distribution"]
    assert known["decision"] == "execute"
    assert known["stages"][-1]["output"]["rule"] == "tier_action"
    assert cases["scrambled"]["decision"] in {"review", "abort"}
    assert cases["out of distribution"]["decision"] in {"review", "abort"}
    assert cases["over budget"]["decision"] == "abort"
    assert [s["name"] for s in cases["over budget"]["stages"]] == ["route", "budget"]
    swapped = cases["after the swap"]
    assert swapped["decision"] == "review"
    assert swapped["stages"][-1]["output"]["signals"]["drift_flagged"] is True
    rows = re.findall(r"^  (\S.*?) {2,}(execute|review|abort)\b.*\n +why: (.+)$", section, re.M)
    assert {decision for _, decision, _ in rows} == {"execute", "review", "abort"}
    assert len(rows) == 5
    assert all(why.strip() for _, _, why in rows)
    assert "drift flip: execute → review, expected" in section
    assert "UNEXPECTED" not in section
    assert re.search(r"held-out perplexity \d+\.\d", section)


@pytest.mark.slow
def test_every_demo_png_is_titled_sized_and_not_blank(demo) -> None:
    from PIL import Image, ImageStat

    proc, out = demo
    pngs = sorted(out.rglob("*.png"))
    assert len(pngs) >= 9
    for png in pngs:
        assert str(png) in proc.stdout, f"{png} is missing from the summary table"
        with Image.open(png) as image:
            assert image.width >= 300, png
            assert image.height >= 200, png
            grey = image.convert("L")
            assert ImageStat.Stat(grey).stddev[0] > 10, f"{png} looks blank"
            assert len(grey.getcolors(maxcolors=65536) or range(65537)) > 16, png


def test_verify_audit_accepts_a_good_log_and_names_tampering(run_cli, tmp_path: Path) -> None:
    import sqlite3

    from hbt_core import AuditLog, generate_key, load_private_key

    generate_key(tmp_path / "key.pem")
    key = load_private_key(tmp_path / "key.pem")
    (tmp_path / "audit-public-key.pem").write_bytes(
        key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    log_path = tmp_path / "audit.sqlite"
    with AuditLog(log_path, signing_key=key) as log:
        for i in range(5):
            log.append({"event": "pipeline_decision", "i": i})
        log.checkpoint()

    ok = run_cli("verify-audit", str(log_path), "--output-format", "json")
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert report["valid"] is True
    assert report["entries"] == 5
    assert report["signatures_checked"] is True

    with sqlite3.connect(log_path) as db:
        db.execute("UPDATE entries SET data = ? WHERE idx = 2", (b'{"event":"forged"}',))
    tampered = run_cli("verify-audit", str(log_path))
    assert tampered.returncode == 1
    assert "INVALID" in tampered.stdout
    assert "entry 2" in tampered.stdout

    missing = run_cli("verify-audit", str(tmp_path / "nope.sqlite"))
    assert missing.returncode == 2


def test_verify_audit_refuses_empty_and_foreign_files(run_cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    proc = run_cli("verify-audit", str(empty))
    assert proc.returncode == 2
    assert "empty" in proc.stderr
    assert empty.read_bytes() == b""  # nothing was written into it
    foreign = tmp_path / "notes.sqlite"
    foreign.write_text("not a database\n" * 100)
    proc = run_cli("verify-audit", str(foreign))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "cannot verify" in proc.stderr


def test_demo_help_explains_the_words_the_demo_prints(run_cli) -> None:
    proc = run_cli("demo", "--help")
    assert proc.returncode == 0
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for word in ("γ (gamma)", "Ω (omega)", "AECE", "LCB", "nDCG@10", "tier_action", "CUSUM"):
        assert word in proc.stdout
        assert word in readme


def test_every_subcommand_has_help(run_cli) -> None:
    for command in ("version", "demo", "serve", "verify-audit"):
        proc = run_cli(command, "--help")
        assert proc.returncode == 0
        assert "usage: resontinex" in proc.stdout
