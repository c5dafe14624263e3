"""tools/release.py on a throw-away git repo: a release, then every refusal, and the CI checks of a tag."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from release import check_tag, main, move_unreleased, parse_tag

REPO = Path(__file__).resolve().parents[2]

TODAY = dt.date.today().isoformat()


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture
def repo(repo_copy: Path) -> Path:
    """The scratch copy with changelogs and the umbrella's version file, committed in a new git repo."""
    for pkg in (REPO / "packages").iterdir():
        if (pkg / "CHANGELOG.md").exists():
            shutil.copy2(pkg / "CHANGELOG.md", repo_copy / "packages" / pkg.name / "CHANGELOG.md")
    shutil.copy2(REPO / "CHANGELOG.md", repo_copy / "CHANGELOG.md")
    (repo_copy / "src" / "resontinex").mkdir(parents=True)
    shutil.copy2(REPO / "src/resontinex/__about__.py", repo_copy / "src/resontinex/__about__.py")
    git(repo_copy, "init", "--quiet", "--initial-branch=main")
    git(repo_copy, "config", "user.email", "release-test@example.invalid")
    git(repo_copy, "config", "user.name", "release test")
    git(repo_copy, "add", "-A")
    git(repo_copy, "commit", "--quiet", "-m", "initial")
    return repo_copy


def version_of(repo: Path, rel: str) -> str:
    match = re.search(r'__version__ = "([^"]+)"', (repo / rel).read_text())
    assert match is not None
    return match.group(1)


def first_entry_line(changelog: Path) -> str:
    """The first line under [Unreleased] (what a release moves under its version)."""
    body = changelog.read_text().split("## [Unreleased]\n", 1)[1]
    return next(line for line in body.splitlines() if line.strip())


def test_a_release_bumps_moves_the_changelog_commits_and_tags(repo: Path) -> None:
    first = first_entry_line(repo / "packages/fusion-ops/CHANGELOG.md")
    assert main(["fusion-ops", "--bump", "patch"], repo=repo) == 0
    assert version_of(repo, "packages/fusion-ops/src/fusion_ops/__about__.py") == "0.1.1"
    changelog = (repo / "packages/fusion-ops/CHANGELOG.md").read_text()
    assert f"## [Unreleased]\n\n## [0.1.1] - {TODAY}\n\n{first}" in changelog
    assert git(repo, "tag", "--list") == "fusion-ops-v0.1.1\n"
    assert git(repo, "log", "-1", "--format=%s") == "fusion-ops: release 0.1.1\n"
    assert git(repo, "status", "--porcelain") == ""
    assert check_tag(repo, "fusion-ops-v0.1.1").dist == "fusion-ops"


def test_without_bump_the_current_version_is_released_and_the_umbrella_too(repo: Path) -> None:
    assert main(["resontinex"], repo=repo) == 0
    assert git(repo, "tag", "--list") == "resontinex-v0.1.0\n"
    # the umbrella's tag is not confused with resontinex-trust's
    assert parse_tag("resontinex-trust-v0.1.0", repo)[0].dist == "resontinex-trust"
    assert parse_tag("resontinex-v0.1.0", repo)[0].dist == "resontinex"


def test_dry_run_writes_nothing(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hbt-core", "--bump", "patch", "--dry-run"], repo=repo) == 0
    assert "would release hbt-core 0.1.0 -> 0.1.1, tag hbt-core-v0.1.1" in capsys.readouterr().out
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "tag", "--list") == ""


def test_a_dirty_tree_is_refused(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "stray.txt").write_text("x")
    assert main(["fusion-ops", "--bump", "patch"], repo=repo) == 1
    assert "uncommitted changes" in capsys.readouterr().err
    assert git(repo, "tag", "--list") == ""


def test_an_empty_unreleased_section_is_refused(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fusion-ops", "--bump", "patch"], repo=repo) == 0
    assert main(["fusion-ops", "--bump", "patch"], repo=repo) == 1
    assert "[Unreleased] section is empty" in capsys.readouterr().err
    assert git(repo, "tag", "--list") == "fusion-ops-v0.1.1\n"


def test_a_version_not_greater_than_the_last_tag_is_refused(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git(repo, "tag", "cert-runtime-v0.1.0")
    assert main(["cert-runtime"], repo=repo) == 1
    assert "not greater than the last tag cert-runtime-v0.1.0" in capsys.readouterr().err
    assert version_of(repo, "packages/cert-runtime/src/cert/runtime/__about__.py") == "0.1.0"


def test_a_version_the_umbrella_range_excludes_is_refused(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["t1-deploy", "--bump", "minor"], repo=repo) == 1
    assert "t1-deploy<0.2,>=0.1 does not admit t1-deploy 0.2.0" in capsys.readouterr().err
    assert git(repo, "status", "--porcelain") == ""


def test_ci_tag_checks(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = first_entry_line(repo / "packages/fusion-ops/CHANGELOG.md")
    assert main(["--check-tag", "fusion-ops-v0.3.0"], repo=repo) == 1  # not the version
    assert main(["--check-tag", "nonsense-v1"], repo=repo) == 2
    assert main(["--check-tag", "fusion-ops-v0.1.0"], repo=repo) == 1  # no changelog section yet
    assert main(["fusion-ops", "--bump", "patch"], repo=repo) == 0
    capsys.readouterr()
    assert main(["--check-tag", "fusion-ops-v0.1.1"], repo=repo) == 0
    assert capsys.readouterr().out.startswith("dist=fusion-ops\nversion=0.1.1\npath=")
    assert main(["--notes", "fusion-ops-v0.1.1"], repo=repo) == 0
    assert capsys.readouterr().out.startswith(first)


def test_usage_errors_exit_2(repo: Path) -> None:
    with pytest.raises(SystemExit) as usage:
        main([], repo=repo)
    assert usage.value.code == 2
    assert main(["no-such-package"], repo=repo) == 2


def test_move_unreleased_keeps_older_sections() -> None:
    text = "# Changelog\n\n## [Unreleased]\n\n- new thing\n\n## [0.1.0] - 2026-01-01\n\n- old\n"
    moved = move_unreleased(text, "0.2.0", dt.date(2026, 12, 7))
    assert moved == (
        "# Changelog\n\n## [Unreleased]\n\n## [0.2.0] - 2026-12-07\n\n- new thing\n\n"
        "## [0.1.0] - 2026-01-01\n\n- old\n"
    )


def test_make_build_pkg_builds_exactly_that_distribution(tmp_path: Path) -> None:
    """`make build PKG=fusion-ops`: its wheel and sdist only, and twine check passes on both."""
    venv = Path(sys.prefix)
    done = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "build",
            "PKG=fusion-ops",
            f"DIST={tmp_path}",
            f"VENV={venv}",
            "STAMP=",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    built = sorted(p.name for p in tmp_path.iterdir())
    assert [name.split("-")[0] for name in built] == ["fusion_ops", "fusion_ops"]
    assert built[0].endswith(".whl")
    assert built[1].endswith(".tar.gz")
    assert "PASSED" in done.stdout


def test_isolation_takes_a_prebuilt_wheel(tmp_path: Path) -> None:
    from check_isolation import prebuilt_wheels

    (tmp_path / "fusion_ops-0.1.0-py3-none-any.whl").write_bytes(b"")
    assert prebuilt_wheels(tmp_path, ["fusion-ops"])["fusion-ops"].name.startswith("fusion_ops")
    with pytest.raises(ValueError, match="expected one wheel of hbt-core, found 0"):
        prebuilt_wheels(tmp_path, ["hbt-core"])
