"""CI runs a package's isolation job when it, or anything it depends on, changed."""

from __future__ import annotations

from pathlib import Path

from changed_packages import affected
from monorepo import load_packages


def test_a_leaf_change_affects_only_that_package(repo_copy: Path) -> None:
    packages = load_packages(repo_copy)
    assert affected(["packages/hbt-core/src/hbt_core/__init__.py"], packages, repo_copy) == [
        "hbt-core"
    ]


def test_a_shared_dependency_change_reaches_its_dependents(repo_copy: Path) -> None:
    packages = load_packages(repo_copy)
    result = affected(["packages/cert-runtime/src/cert/runtime/__init__.py"], packages, repo_copy)
    assert result == ["cert-coordination", "cert-runtime", "cert-trajectory", "hbt-core"]


def test_shared_build_files_affect_everything(repo_copy: Path) -> None:
    packages = load_packages(repo_copy)
    assert len(affected(["configs/constraints.txt"], packages, repo_copy)) == len(packages)


def test_docs_only_changes_affect_nothing(repo_copy: Path) -> None:
    assert (
        affected(["docs/architecture.md", "README.md"], load_packages(repo_copy), repo_copy) == []
    )
