"""The umbrella command, as a user runs it."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import pytest

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
def test_demo_runs_every_installed_showcase(run_cli, tmp_path: Path) -> None:
    proc = run_cli("demo", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "Installed members:" in proc.stdout
    for member in MEMBERS:
        assert member.dist in proc.stdout
