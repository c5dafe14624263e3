"""The isolation check's static stage catches what would break a package installed alone."""

from __future__ import annotations

from pathlib import Path

import pytest

import check_isolation
from monorepo import load_packages


def run_static(repo: Path, *packages: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = check_isolation.main(["--static-only", "--repo", str(repo), *packages])
    return code, capsys.readouterr().out


def test_the_real_tree_passes_the_static_checks(
    repo_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run_static(repo_copy, capsys=capsys)
    assert code == 0, out
    assert (
        out.strip().splitlines()[-1]
        == f"isolation: {len(load_packages(repo_copy))} passed, 0 failed"
    )


def test_an_undeclared_sibling_import_is_named(
    repo_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = repo_copy / "packages/hbt-core/src/hbt_core/__init__.py"
    module.write_text(module.read_text() + "\nimport cert.trajectory  # deliberately undeclared\n")

    code, out = run_static(repo_copy, "hbt-core", capsys=capsys)

    assert code == 1
    assert "FAIL hbt-core" in out
    assert "imports cert.trajectory from cert-trajectory" in out
    assert "hbt-core does not declare" in out
    assert "isolation: 0 passed, 1 failed" in out


def test_from_namespace_import_member_is_resolved(
    repo_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = repo_copy / "packages/fusion-ops/src/fusion_ops/__init__.py"
    module.write_text(module.read_text() + "\nfrom resontinex import trust\n")

    code, out = run_static(repo_copy, "fusion-ops", capsys=capsys)

    assert code == 1
    assert "imports resontinex.trust from resontinex-trust" in out


def test_a_declared_sibling_import_is_accepted(
    repo_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = repo_copy / "packages/cert-trajectory/src/cert/trajectory/__init__.py"
    module.write_text(module.read_text() + "\nimport cert.runtime\n")

    code, out = run_static(repo_copy, "cert-trajectory", capsys=capsys)

    assert code == 0, out


def test_a_stray_namespace_init_is_caught(
    repo_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo_copy / "packages/cert-trajectory/src/cert/__init__.py").write_text("")

    code, out = run_static(repo_copy, "cert-trajectory", capsys=capsys)

    assert code == 1
    assert (
        "packages/cert-trajectory/src/cert/__init__.py: namespace root must not have __init__.py"
        in out
    )


def test_a_tests_package_init_is_caught(
    repo_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo_copy / "packages/t1-deploy/tests/__init__.py").write_text("")

    code, out = run_static(repo_copy, "t1-deploy", capsys=capsys)

    assert code == 1
    assert "tests/__init__.py" in out


def test_an_unknown_package_is_a_usage_error(
    repo_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check_isolation.main(["--static-only", "--repo", str(repo_copy), "no-such-dist"]) == 2
    assert "unknown package(s): no-such-dist" in capsys.readouterr().err


def test_closure_follows_sibling_dependencies(repo_copy: Path) -> None:
    packages = load_packages(repo_copy)
    members, third_party = check_isolation.closure(packages["cert-trajectory"], packages)
    assert next(m.dist for m in members) == "cert-trajectory"
    assert "cert-runtime" in {m.dist for m in members}
    assert all(r.name not in {m.dist for m in members} for r in third_party)
