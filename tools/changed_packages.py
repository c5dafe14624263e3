"""Which members a change touches: the packages whose files changed and every package depending on them.

Prints a JSON list of distribution names (for a CI matrix). A change to shared build files
(root pyproject, configs/constraints.txt, Makefile, tools/) affects every member.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from packaging.utils import canonicalize_name

sys.path.insert(0, str(Path(__file__).resolve().parent))
from monorepo import REPO, Package, load_packages

SHARED = (
    "pyproject.toml",
    "Makefile",
    "configs/constraints.txt",
    "configs/requirements-dev.txt",
    "tools/",
)


def affected(changed: list[str], packages: dict[str, Package], repo: Path = REPO) -> list[str]:
    if any(
        path == s or (s.endswith("/") and path.startswith(s)) for path in changed for s in SHARED
    ):
        return sorted(p.dist for p in packages.values())
    touched = {
        key
        for key, pkg in packages.items()
        for path in changed
        if (repo / path).resolve().is_relative_to(pkg.path.resolve())
    }
    dependents = {
        key: {canonicalize_name(r.name) for r in pkg.requirements(pkg.extras)}
        for key, pkg in packages.items()
    }
    grew = True
    while grew:
        grew = False
        for key, needs in dependents.items():
            if key not in touched and needs & touched:
                touched.add(key)
                grew = True
    return sorted(packages[k].dist for k in touched)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="git revision to diff against")
    args = parser.parse_args()
    diff = subprocess.run(
        ["git", "diff", "--name-only", f"{args.base}...HEAD"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if diff.returncode != 0:  # unknown base (first push, force push): check everything
        print(json.dumps(sorted(p.dist for p in load_packages().values())))
        return 0
    print(json.dumps(affected(diff.stdout.split(), load_packages())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
