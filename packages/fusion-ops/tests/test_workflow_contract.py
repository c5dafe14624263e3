"""The budget-gate workflow reads exactly what budget_analysis writes to $GITHUB_OUTPUT."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fusion_ops.budget_analysis import COMMENT_MARKER, GITHUB_OUTPUT_KEYS

WORKFLOW = Path(".github") / "workflows" / "fusion-budget-gates.yml"


@pytest.fixture
def workflow(repo_root: Path) -> tuple[str, dict]:  # type: ignore[type-arg]
    text = (repo_root / WORKFLOW).read_text()
    return text, yaml.safe_load(text)


def test_workflow_reads_only_keys_the_script_writes(workflow: tuple[str, dict]) -> None:  # type: ignore[type-arg]
    text, _ = workflow
    read = set(re.findall(r"steps\.analyse\.outputs\.([A-Za-z0-9_-]+)", text))
    assert read, "the workflow must read the analysis outputs"
    assert read <= set(GITHUB_OUTPUT_KEYS)
    assert "budget_status" in read


def test_analysis_step_uses_github_format_and_comment_marker(workflow: tuple[str, dict]) -> None:  # type: ignore[type-arg]
    text, data = workflow
    steps = data["jobs"]["budget-gate"]["steps"]
    analyse = next(s for s in steps if s.get("id") == "analyse")
    assert "--output-format github" in analyse["run"]
    assert "--comment-file budget_comment.md" in analyse["run"]
    assert analyse.get("continue-on-error") is True  # the comment is posted even on block
    assert COMMENT_MARKER in text
    collect = next(s for s in steps if "fusion-budget collect" in s.get("run", ""))
    runs = re.search(r'RUNS: "(\d+)"', text)
    assert runs
    assert int(runs.group(1)) >= 5
    assert "--runs" in collect["run"]
    on = data.get("on", data.get(True))
    assert "pull_request" in on


def test_script_writes_exactly_the_declared_keys(tmp_path: Path, make_report) -> None:  # type: ignore[no-untyped-def]
    import json

    report = tmp_path / "r.json"
    report.write_text(json.dumps(make_report([([100, 101, 99], [100, 102, 98])]).to_json()))
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fusion_ops.budget_analysis",
            "--report-file",
            str(report),
            "--output-format",
            "github",
        ],
        env={"GITHUB_OUTPUT": str(out), "PATH": ""},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    keys = [line.split("=", 1)[0] for line in out.read_text().splitlines()]
    assert tuple(keys) == GITHUB_OUTPUT_KEYS


def test_actionlint_accepts_the_workflow(repo_root: Path) -> None:
    binary = shutil.which("actionlint") or str(Path(sys.executable).with_name("actionlint"))
    if not Path(binary).exists():
        pytest.skip("actionlint is not installed")
    proc = subprocess.run(
        [binary, str(WORKFLOW)], cwd=repo_root, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_workflow_measures_claude_only_when_the_secret_is_set(workflow: tuple[str, dict]) -> None:  # type: ignore[type-arg]
    _, data = workflow
    steps = data["jobs"]["budget-gate"]["steps"]
    collect = next(s for s in steps if "fusion-budget collect" in s.get("run", ""))
    run = collect["run"]
    assert 'if [ -n "${ANTHROPIC_API_KEY}" ]' in run
    assert "--backend anthropic" in run
    assert "--backend offline" in run
    assert "--max-spend-usd" in run
    # the key reaches the collect step only, never the job or the comment step
    assert collect["env"]["ANTHROPIC_API_KEY"] == "${{ secrets.ANTHROPIC_API_KEY }}"
    others = [s for s in steps if s is not collect]
    assert all("secrets.ANTHROPIC_API_KEY" not in str(s) for s in others)
    assert "ANTHROPIC_API_KEY" not in data["jobs"]["budget-gate"].get("env", {})
    install = next(s for s in steps if "pip install" in s.get("run", ""))
    assert "fusion-ops[anthropic]" in install["run"]
