"""tools/mutate.py: module selection, the scratch project it lays out, result parsing, exit codes."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

import mutate

RESULTS = """\
    fusion_ops.governance.x_f__mutmut_1: killed
    fusion_ops.governance.x_f__mutmut_2: survived
    fusion_ops.governance.xǁGovǁrequest__mutmut_3: timeout
    fusion_ops.governance.xǁGovǁrequest__mutmut_4: no tests
    fusion_ops.governance.xǁGovǁrequest__mutmut_5: killed
Some other line: not a mutant
"""


def test_every_core_module_and_its_listed_tests_exist() -> None:
    for dist, modules in mutate.CORE.items():
        pkg = mutate.REPO / "packages" / dist
        for name, module in modules.items():
            assert (pkg / module.source).is_file(), (dist, name)
            assert any((pkg / t).is_file() for t in module.tests), (dist, name)
            assert all(t.startswith("tests/test_") for t in module.tests)


def test_results_are_parsed_and_counted() -> None:
    statuses = mutate.parse_results(RESULTS)
    assert len(statuses) == 5
    assert statuses["fusion_ops.governance.xǁGovǁrequest__mutmut_3"] == "timeout"
    result = mutate.ModuleResult("fusion-ops", "governance", statuses)
    assert result.survivors == [
        "fusion_ops.governance.x_f__mutmut_2",
        "fusion_ops.governance.xǁGovǁrequest__mutmut_4",
    ]
    assert result.kill_rate == pytest.approx(3 / 5)
    assert result.row() == {
        "module": "fusion-ops:governance",
        "mutants": 5,
        "killed": 2,
        "survived": 2,
        "timeout": 1,
        "kill_rate": 0.6,
        "not_checked": 0,
    }
    table = mutate.table([result])
    assert table.splitlines()[0] == "| module | mutants | killed | survived | timeout | kill rate |"
    assert table.splitlines()[2] == "| fusion-ops:governance | 5 | 2 | 2 | 1 | 60.0% |"


def test_a_module_without_mutants_scores_zero() -> None:
    assert mutate.ModuleResult("d", "m", {}).kill_rate == 0.0


def test_an_interrupted_run_scores_what_it_checked_and_says_so() -> None:
    statuses = {"m.x_f__mutmut_1": "killed", "m.x_f__mutmut_2": "not checked"}
    result = mutate.ModuleResult("d", "m", statuses)
    assert (result.kill_rate, result.survivors, result.unchecked) == (1.0, [], ["m.x_f__mutmut_2"])
    assert "d:m: 1 mutants not checked (run interrupted)" in mutate.table([result])


def test_selection_by_package_and_module() -> None:
    assert mutate.selected("hbt-core", []) == [("hbt-core", "merkle"), ("hbt-core", "hdc")]
    assert mutate.selected("hbt-core", ["hdc"]) == [("hbt-core", "hdc")]
    assert len(mutate.selected(None, [])) == sum(len(m) for m in mutate.CORE.values())
    with pytest.raises(mutate.MutateError, match="PKG: 'nope'"):
        mutate.selected("nope", [])
    with pytest.raises(mutate.MutateError, match=r"MODULE: unknown \['gate'\]"):
        mutate.selected("hbt-core", ["gate"])


def test_the_scratch_project_mutates_one_module_with_its_tests_only(tmp_path: Path) -> None:
    module = mutate.CORE["hbt-core"]["merkle"]
    mutate.copy_tests("hbt-core", module, tmp_path)
    copied = {p.name for p in (tmp_path / "tests").glob("test_*.py")}
    assert "test_merkle.py" in copied
    assert copied <= {Path(t).name for t in module.tests}
    assert (tmp_path / "tests" / "conftest.py").is_file()
    config = tomllib.loads(mutate.pyproject_text(module))
    assert config["tool"]["mutmut"]["only_mutate"] == ["src/hbt_core/merkle.py"]
    assert config["tool"]["mutmut"]["pytest_add_cli_args_test_selection"] == ["tests"]
    root = tomllib.loads((mutate.REPO / "pyproject.toml").read_text("utf-8"))
    assert config["tool"]["pytest"]["ini_options"] == root["tool"]["pytest"]["ini_options"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nope"], "PKG: 'nope'"),
        (["hbt-core", "--module", "gate"], "MODULE: unknown"),
        (["--max-children", "0"], "--max-children: must be >= 1, got 0"),
        (["--min-kill-rate", "1.5"], "--min-kill-rate: must be in [0, 1], got 1.5"),
    ],
)
def test_usage_errors_exit_2_naming_the_argument(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert mutate.main(argv) == 2
    assert message in capsys.readouterr().err


def test_survivors_only_needs_an_earlier_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(mutate, "WORK", tmp_path)
    assert mutate.main(["hbt-core", "--module", "merkle", "--survivors-only"]) == 2
    assert "no earlier run" in capsys.readouterr().err
    assert mutate.main(["hbt-core", "--module", "merkle", "--report-only"]) == 2


def test_list_prints_the_core_modules(capsys: pytest.CaptureFixture[str]) -> None:
    assert mutate.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "resontinex-trust:gate\tsrc/resontinex/trust/composite_trust_gate.py" in out
    assert "cert-runtime:breaker\tsrc/cert/runtime/breaker.py" in out


@pytest.mark.slow
def test_a_named_mutant_is_killed_and_the_unmutated_copy_passes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(mutate, "WORK", tmp_path)
    label = "hbt Merkle inclusion `sn != 0` check removed"
    named = mutate.NAMED[label]
    assert mutate.check_named(label, named) == "killed"
    unmutated = dataclasses.replace(named, mutated=named.original)
    assert mutate.check_named(label, unmutated) == "survived"


def test_a_named_mutant_whose_source_changed_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(mutate, "WORK", tmp_path)
    label = "hbt Merkle inclusion `sn != 0` check removed"
    moved = dataclasses.replace(mutate.NAMED[label], original="no such line")
    with pytest.raises(mutate.MutateError, match="no longer holds 'no such line' once"):
        mutate.check_named(label, moved)
