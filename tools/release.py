"""Release one distribution of the monorepo: bump, changelog, commit and tag, refusing what is wrong.

    python tools/release.py PKG [--bump major|minor|patch] [--dry-run]
        Without --bump, the version already in __about__.py is released. The [Unreleased] section
        of PKG's CHANGELOG.md moves under the new version with today's date, the umbrella's range
        must still admit the version (tools/check_umbrella.py), then one commit and the tag
        ``<dist>-v<version>``. Refuses a dirty tree, an empty [Unreleased] section and a version
        that is not greater than PKG's last tag.
    python tools/release.py --check-tag TAG
        What the release workflow runs on a pushed tag: TAG names a distribution whose version file
        and changelog hold exactly that version. Prints ``dist=``, ``version=`` and ``path=`` lines
        for ``$GITHUB_OUTPUT``.
    python tools/release.py --notes TAG
        The changelog section of TAG's version, for the GitHub release.

PKG is a member under packages/ or ``resontinex`` (the umbrella, released the same way).
Exit codes: 0 done, 1 refused (the release would be wrong), 2 usage or unexpected error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hatchling.version.scheme.standard import StandardScheme
from hatchling.version.source.regex import RegexSource
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_umbrella import umbrella_problems
from monorepo import REPO

UNRELEASED = "## [Unreleased]"
_SECTION = re.compile(r"^## \[(?P<name>[^\]]+)\]", re.MULTILINE)


class ReleaseRefusedError(Exception):
    """The release would be wrong; nothing was written."""


@dataclass(frozen=True)
class Target:
    """A releasable distribution: where its version file and changelog live."""

    dist: str
    root: Path
    version_path: str  # relative to root, as in [tool.hatch.version] path

    @property
    def changelog(self) -> Path:
        return self.root / "CHANGELOG.md"

    def version_source(self) -> RegexSource:
        return RegexSource(str(self.root), {"path": self.version_path})

    @property
    def version(self) -> str:
        return str(self.version_source().get_version_data()["version"])


def targets(repo: Path = REPO) -> dict[str, Target]:
    """Every member and the umbrella, keyed by canonical distribution name."""
    found: dict[str, Target] = {}
    for root in [repo, *(p.parent for p in sorted((repo / "packages").glob("*/pyproject.toml")))]:
        meta = tomllib.loads((root / "pyproject.toml").read_text())
        dist = meta["project"]["name"]
        found[canonicalize_name(dist)] = Target(
            dist, root, meta["tool"]["hatch"]["version"]["path"]
        )
    return found


def target_of(name: str, repo: Path = REPO) -> Target:
    known = targets(repo)
    try:
        return known[canonicalize_name(name)]
    except KeyError:
        raise ValueError(f"unknown distribution {name!r}; known: {', '.join(known)}") from None


def parse_tag(tag: str, repo: Path = REPO) -> tuple[Target, Version]:
    """``<dist>-v<version>`` → (target, version); the longest matching distribution name wins."""
    for target in sorted(targets(repo).values(), key=lambda t: -len(t.dist)):
        prefix = f"{target.dist}-v"
        if tag.startswith(prefix):
            try:
                return target, Version(tag[len(prefix) :])
            except InvalidVersion:
                break
    raise ValueError(f"tag {tag!r} is not <distribution>-v<version> of a known distribution")


# ---------------------------------------------------------------- changelog


def _sections(text: str) -> list[tuple[str, int, int]]:
    """(name, start of heading, end of section) for each ``## [...]`` section."""
    heads = list(_SECTION.finditer(text))
    ends = [m.start() for m in heads[1:]] + [len(text)]
    return [(m.group("name"), m.start(), end) for m, end in zip(heads, ends, strict=True)]


def section_body(text: str, name: str) -> str | None:
    """The lines under ``## [name]``, without the heading; None when there is no such section."""
    for found, start, end in _sections(text):
        if found == name:
            return text[start:end].split("\n", 1)[1].strip("\n") if "\n" in text[start:end] else ""
    return None


def _has_entries(body: str) -> bool:
    """True when the section says something beyond empty ``### Added``-style headings."""
    return any(line.strip() and not line.startswith("###") for line in body.splitlines())


def move_unreleased(text: str, version: str, date: dt.date) -> str:
    """The changelog with [Unreleased]'s entries under ``## [version] - date`` and [Unreleased] empty."""
    body = section_body(text, "Unreleased")
    if body is None:
        raise ReleaseRefusedError(f"the changelog has no '{UNRELEASED}' section")
    if not _has_entries(body):
        raise ReleaseRefusedError("the [Unreleased] section is empty: nothing to release")
    if section_body(text, version) is not None:
        raise ReleaseRefusedError(f"the changelog already has a section for {version}")
    start, end = next((s, e) for name, s, e in _sections(text) if name == "Unreleased")
    moved = f"{UNRELEASED}\n\n## [{version}] - {date.isoformat()}\n\n{body}\n\n"
    return text[:start] + moved + text[end:].lstrip("\n")


# ---------------------------------------------------------------- git


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout


def last_tagged(repo: Path, dist: str) -> Version | None:
    """The greatest version tagged ``<dist>-v*`` (other distributions' tags never match)."""
    versions = []
    for tag in _git(repo, "tag", "--list", f"{dist}-v*").split():
        try:
            versions.append(Version(tag[len(dist) + 2 :]))
        except InvalidVersion:
            continue
    return max(versions, default=None)


# ---------------------------------------------------------------- release


@dataclass(frozen=True)
class Plan:
    target: Target
    old: str
    new: str
    changelog: str  # the whole new CHANGELOG.md

    @property
    def tag(self) -> str:
        return f"{self.target.dist}-v{self.new}"


def plan_release(repo: Path, name: str, bump: str | None, today: dt.date) -> Plan:
    """Every check of a release, with nothing written yet."""
    target = target_of(name, repo)
    if _git(repo, "status", "--porcelain").strip():
        raise ReleaseRefusedError(
            "the work tree has uncommitted changes; commit or stash them first"
        )
    old = target.version
    new = old if bump is None else StandardScheme(str(target.root), {}).update(bump, old, {})
    last = last_tagged(repo, target.dist)
    if last is not None and Version(new) <= last:
        raise ReleaseRefusedError(
            f"{target.dist} {new} is not greater than the last tag {target.dist}-v{last}"
            + ("" if bump else "; pass --bump")
        )
    problems = umbrella_problems(repo, versions={canonicalize_name(target.dist): new})
    if problems:
        raise ReleaseRefusedError("the umbrella would not admit it: " + "; ".join(problems))
    changelog = move_unreleased(target.changelog.read_text(), new, today)
    return Plan(target, old, new, changelog)


def apply(repo: Path, plan: Plan) -> None:
    """Write the version and the changelog, commit both, tag the commit."""
    target = plan.target
    if plan.new != plan.old:
        source = target.version_source()
        source.set_version(plan.new, source.get_version_data())
    target.changelog.write_text(plan.changelog)
    paths = [str(target.changelog), str(target.root / target.version_path)]
    _git(repo, "add", *paths)
    _git(repo, "commit", "--quiet", "-m", f"{target.dist}: release {plan.new}")
    _git(repo, "tag", "-a", plan.tag, "-m", f"{target.dist} {plan.new}")


def check_tag(repo: Path, tag: str) -> Target:
    """The tag's distribution, after checking its version file and changelog hold that version."""
    target, version = parse_tag(tag, repo)
    if Version(target.version) != version:
        raise ReleaseRefusedError(
            f"tag {tag} does not match {target.dist}'s version {target.version}"
        )
    if section_body(target.changelog.read_text(), target.version) is None:
        raise ReleaseRefusedError(f"{target.changelog} has no section for {target.version}")
    return target


def main(argv: Sequence[str] | None = None, *, repo: Path = REPO) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", nargs="?", help="distribution to release")
    parser.add_argument("--bump", choices=["major", "minor", "patch"])
    parser.add_argument("--dry-run", action="store_true", help="check and show; write nothing")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check-tag", metavar="TAG", help="check a pushed release tag (CI)")
    mode.add_argument("--notes", metavar="TAG", help="print the changelog section of TAG")
    args = parser.parse_args(argv)
    if (args.package is None) == (args.check_tag is None and args.notes is None):
        parser.error("give either a package, or --check-tag TAG, or --notes TAG")
    try:
        if args.check_tag:
            target = check_tag(repo, args.check_tag)
            print(f"dist={target.dist}\nversion={target.version}\npath={target.root}")
        elif args.notes:
            target, version = parse_tag(args.notes, repo)
            body = section_body(target.changelog.read_text(), str(version))
            if body is None:
                raise ReleaseRefusedError(f"{target.changelog} has no section for {version}")
            print(body)
        else:
            plan = plan_release(repo, args.package, args.bump, dt.date.today())
            if args.dry_run:
                print(f"would release {plan.target.dist} {plan.old} -> {plan.new}, tag {plan.tag}")
                print(section_body(plan.changelog, plan.new))
            else:
                apply(repo, plan)
                print(f"released {plan.target.dist} {plan.new}: tagged {plan.tag}")
                print(f"push it: git push origin main {plan.tag}")
    except ReleaseRefusedError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    except (ValueError, OSError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
