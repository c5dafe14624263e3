"""The umbrella check notices members left out, ranges that exclude the tree, and an incomplete `all`."""

from __future__ import annotations

from pathlib import Path

from check_umbrella import umbrella_problems


def edit_root(repo: Path, old: str, new: str) -> None:
    pyproject = repo / "pyproject.toml"
    text = pyproject.read_text()
    assert old in text
    pyproject.write_text(text.replace(old, new))


def test_the_real_umbrella_is_consistent(repo_copy: Path) -> None:
    assert umbrella_problems(repo_copy) == []


def test_a_range_that_excludes_the_local_version(repo_copy: Path) -> None:
    edit_root(repo_copy, '"hbt-core>=0.1,<0.2"', '"hbt-core>=0.2,<0.3"')
    assert umbrella_problems(repo_copy) == [
        "extra 'hbt': hbt-core<0.3,>=0.2 does not admit hbt-core 0.1.0"
    ]


def test_a_member_in_no_extra(repo_copy: Path) -> None:
    edit_root(repo_copy, 'deploy = ["t1-deploy>=0.1,<0.2"]\n', "")
    problems = umbrella_problems(repo_copy)
    assert "member t1-deploy is in no umbrella extra" in problems


def test_all_must_cover_every_extra(repo_copy: Path) -> None:
    edit_root(
        repo_copy,
        "resontinex[trust,fusion,deploy,cert,hbt,server,postgres]",
        "resontinex[trust,fusion]",
    )
    problems = umbrella_problems(repo_copy)
    assert "extra 'all' does not include: cert, deploy, hbt, postgres, server" in problems


def test_an_unbounded_member_requirement(repo_copy: Path) -> None:
    edit_root(repo_copy, '"fusion-ops>=0.1,<0.2"', '"fusion-ops"')
    assert "extra 'fusion': fusion-ops has no version range" in umbrella_problems(repo_copy)
