"""Check the umbrella's extras against the members in packages/.

Every member must sit in an umbrella extra, `all` must cover every extra, and each range must
admit the member's local version (so a bump of a member without the umbrella fails here).
Prints one line per problem; exits 1 when there is any.
"""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

sys.path.insert(0, str(Path(__file__).resolve().parent))
from monorepo import REPO, load_packages


def umbrella_problems(repo: Path = REPO, versions: Mapping[str, str] | None = None) -> list[str]:
    """Problems of the umbrella's extras; ``versions`` overrides members' local versions (a planned bump)."""
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    name = canonicalize_name(project["name"])
    extras = {
        k: [Requirement(r) for r in v] for k, v in project.get("optional-dependencies", {}).items()
    }
    members = load_packages(repo)
    problems: list[str] = []

    placed: dict[str, Requirement] = {}
    for extra, reqs in extras.items():
        for req in reqs:
            key = canonicalize_name(req.name)
            if key in members:
                placed[key] = req
                if not req.specifier:
                    problems.append(f"extra '{extra}': {req.name} has no version range")
                    continue
                version = (versions or {}).get(key, members[key].version)
                if not req.specifier.contains(version, prereleases=True):
                    problems.append(f"extra '{extra}': {req} does not admit {req.name} {version}")
    for key, pkg in members.items():
        if key not in placed:
            problems.append(f"member {pkg.dist} is in no umbrella extra")

    if "all" not in extras:
        problems.append("the umbrella has no 'all' extra")
    else:
        covered: set[str] = set()
        for req in extras["all"]:
            if canonicalize_name(req.name) == name:
                covered |= req.extras
        missing = set(extras) - covered - {"all", "test"}
        if missing:
            problems.append(f"extra 'all' does not include: {', '.join(sorted(missing))}")
    return problems


def main() -> int:
    problems = umbrella_problems()
    for problem in problems:
        print(problem)
    if not problems:
        print("umbrella extras: every member placed, every range admits its local version")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
