"""Prove that each member package installs and passes its own tests alone.

For each package (all, or those named on the command line):

1. static checks: no ``__init__.py`` in a namespace root (``src/resontinex``, ``src/cert``), no
   ``tests/__init__.py``, and no module under src/, tests/ or benchmarks/ importing a sibling that
   the package does not declare;
2. build the package and its in-repo dependency closure as wheels;
3. install them into a fresh venv: siblings from those wheels with ``--no-index --no-deps`` (pip
   can never take a sibling from an index), then the package's ``test`` extra and the siblings'
   third-party dependencies under configs/constraints.txt;
4. check that nothing else of ours got installed and that each sibling is at its local version;
5. copy the package's tests to a scratch directory and run them there with ``python -I``, so
   neither the repo nor any src/ is on sys.path.

Venvs are kept under .iso/venvs, keyed by the exact requirement set, and reused (after removing
our own distributions) by every package whose requirement set is identical, in this run and the
next. Ends with a line ``N passed, N failed``; exits 1 on any failure, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from threading import Lock

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

sys.path.insert(0, str(Path(__file__).resolve().parent))
from monorepo import NAMESPACE_ROOTS, REPO, Package, load_packages, owner_of

WORK = REPO / ".iso"
CONSTRAINTS = REPO / "configs" / "constraints.txt"
UMBRELLA = "resontinex"
_venv_locks: dict[str, Lock] = {}
_venv_locks_guard = Lock()


@dataclass
class Outcome:
    dist: str
    problems: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# ---------------------------------------------------------------- static checks


def _imported_modules(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, module) for each absolute import; `from a import b` yields both a and a.b."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def static_problems(pkg: Package, packages: dict[str, Package]) -> list[str]:
    """Layout and import problems of one package, each naming the file and what is wrong."""
    problems: list[str] = []
    for root in NAMESPACE_ROOTS:
        stray = pkg.path / "src" / root / "__init__.py"
        if stray.exists():
            problems.append(
                f"{stray.relative_to(pkg.path.parent.parent)}: namespace root must not have __init__.py "
                f"(it hides every sibling under `{root}.`)"
            )
    if (pkg.path / "tests" / "__init__.py").exists():
        problems.append(f"{pkg.dist}: tests/__init__.py makes test modules collide across packages")

    declared = pkg.declared_keys() | {pkg.key}
    for folder in ("src", "tests", "benchmarks"):
        for py in sorted((pkg.path / folder).rglob("*.py")) if (pkg.path / folder).is_dir() else []:
            rel = py.relative_to(pkg.path.parent.parent)
            try:
                tree = ast.parse(py.read_text(encoding="utf-8"), filename=str(py))
            except (SyntaxError, UnicodeDecodeError) as exc:
                problems.append(f"{rel}: cannot be parsed: {exc}")
                continue
            reported: set[str] = set()
            for line, module in _imported_modules(tree):
                owner = owner_of(module, packages)
                if owner is None or owner.key in declared or owner.key in reported:
                    continue
                reported.add(owner.key)
                problems.append(
                    f"{rel}:{line}: imports {module} from {owner.dist}, "
                    f"which {pkg.dist} does not declare in its dependencies"
                )
    return problems


# ---------------------------------------------------------------- closure, wheels, venvs


def closure(pkg: Package, packages: dict[str, Package]) -> tuple[list[Package], list[Requirement]]:
    """In-repo packages needed to test `pkg` (itself first) and every third-party requirement."""
    needed: dict[str, set[str]] = {pkg.key: {"test"}}
    queue = [pkg.key]
    while queue:
        key = queue.pop()
        for req in packages[key].requirements(needed[key]):
            sib = canonicalize_name(req.name)
            if sib not in packages:
                continue
            new = set(req.extras) - needed.get(sib, set())
            if sib not in needed or new:
                needed.setdefault(sib, set()).update(req.extras)
                queue.append(sib)
    members = [packages[k] for k in needed]
    third_party: list[Requirement] = []
    for member in members:
        third_party += [
            r
            for r in member.requirements(needed[member.key])
            if canonicalize_name(r.name) not in packages
        ]
    return members, third_party


def build_wheel(pkg: Package, python: Path) -> Path:
    out = WORK / "wheels" / pkg.key
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(pkg.path),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    (wheel,) = out.glob("*.whl")
    return wheel


def prebuilt_wheels(directory: Path, keys: Sequence[str]) -> dict[str, Path]:
    """The one wheel of each named package in ``directory``; a missing or ambiguous wheel is an error."""
    found: dict[str, list[Path]] = {}
    for wheel in sorted(directory.glob("*.whl")):
        found.setdefault(canonicalize_name(parse_wheel_filename(wheel.name)[0]), []).append(wheel)
    chosen: dict[str, Path] = {}
    for key in keys:
        candidates = found.get(key, [])
        if len(candidates) != 1:
            raise ValueError(f"{directory}: expected one wheel of {key}, found {len(candidates)}")
        chosen[key] = candidates[0]
    return chosen


def _run(
    cmd: Sequence[str], outcome: Outcome, cwd: Path | None = None, env: dict[str, str] | None = None
) -> bool:
    proc = subprocess.run(list(cmd), cwd=cwd, env=env, capture_output=True, text=True)
    outcome.log.append(f"$ {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
    return proc.returncode == 0


def _lock_for(key: str) -> Lock:
    with _venv_locks_guard:
        return _venv_locks.setdefault(key, Lock())


def prepare_venv(third_party: list[Requirement], outcome: Outcome) -> Path | None:
    """A venv holding exactly `third_party` (plus pytest's own needs), built once per requirement set."""
    spec = sorted({str(r) for r in third_party})
    torch_first = any(canonicalize_name(r.name) == "torch" for r in third_party) or any(
        canonicalize_name(r.name) in {"transformers", "torch-hd", "bitsandbytes"}
        for r in third_party
    )
    digest = hashlib.sha256(json.dumps([spec, CONSTRAINTS.read_text()]).encode()).hexdigest()[:16]
    venv = WORK / "venvs" / digest
    ready = venv / ".ready"
    python = venv / "bin" / "python"
    if ready.exists():
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    if not _run([sys.executable, "-m", "venv", str(venv)], outcome):
        return None
    pip = [
        str(python),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "-c",
        str(CONSTRAINTS),
    ]
    if torch_first and not _run([*pip, "torch"], outcome):
        return None
    if spec and not _run([*pip, *spec], outcome):
        return None
    ready.write_text("\n".join(spec))
    return venv


def our_installed(venv: Path, packages: dict[str, Package]) -> dict[str, str]:
    listing = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "list",
            "--format=json",
            "--disable-pip-version-check",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    ours = set(packages) | {UMBRELLA}
    return {
        canonicalize_name(d["name"]): d["version"]
        for d in json.loads(listing.stdout)
        if canonicalize_name(d["name"]) in ours
    }


def pytest_ini() -> str:
    """The root pytest configuration, as a standalone pytest.ini for the scratch directory."""
    opts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    lines = ["[pytest]"]
    for key, value in opts.items():
        if isinstance(value, list):
            lines.append(f"{key} =" + "".join(f"\n    {v}" for v in value))
        else:
            lines.append(f"{key} = {str(value).lower() if isinstance(value, bool) else value}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- one package


def check_package(
    pkg: Package, packages: dict[str, Package], wheels: dict[str, Path], pytest_args: list[str]
) -> Outcome:
    outcome = Outcome(pkg.dist)
    outcome.problems += static_problems(pkg, packages)
    if outcome.problems:
        return outcome

    members, third_party = closure(pkg, packages)
    with _lock_for(json.dumps(sorted(str(r) for r in third_party))):
        venv = prepare_venv(third_party, outcome)
        if venv is None:
            outcome.problems.append(
                f"{pkg.dist}: installing its third-party requirements failed (log below)"
            )
            return outcome
        python = venv / "bin" / "python"
        stale = our_installed(venv, packages)
        if stale and not _run(
            [str(python), "-m", "pip", "uninstall", "-y", "--quiet", *stale], outcome
        ):
            outcome.problems.append(
                f"{pkg.dist}: could not remove {sorted(stale)} from the reused venv"
            )
            return outcome
        ours = [str(wheels[m.key]) for m in members]
        if not _run(
            [str(python), "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", *ours],
            outcome,
        ):
            outcome.problems.append(
                f"{pkg.dist}: installing the local wheels with --no-index --no-deps failed"
            )
            return outcome
        # Resolve once more with the siblings in place: anything still missing is an undeclared need.
        check = _run([str(python), "-m", "pip", "check"], outcome)
        if not check:
            outcome.problems.append(
                f"{pkg.dist}: `pip check` found a missing or conflicting requirement"
            )

        installed = our_installed(venv, packages)
        expected = {m.key: m.version for m in members}
        for key, version in installed.items():
            if key not in expected:
                outcome.problems.append(
                    f"{pkg.dist}: {key} {version} was installed but is not in its closure"
                )
            elif version != expected[key]:
                outcome.problems.append(
                    f"{pkg.dist}: {key} is {version}, the tree has {expected[key]}"
                )
        for key in expected.keys() - installed.keys():
            outcome.problems.append(f"{pkg.dist}: sibling {key} did not get installed")

        scratch = WORK / "run" / pkg.key
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.copytree(
            pkg.path / "tests", scratch / "tests", ignore=shutil.ignore_patterns("__pycache__")
        )
        (scratch / "pytest.ini").write_text(pytest_ini())
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        where = subprocess.run(
            [str(python), "-I", "-c", f"import {pkg.import_names[0]} as m; print(m.__file__)"],
            cwd=scratch,
            capture_output=True,
            text=True,
        )
        if where.returncode != 0 or not Path(where.stdout.strip()).resolve().is_relative_to(
            venv.resolve()
        ):
            outcome.problems.append(
                f"{pkg.dist}: import resolved outside the venv: {where.stdout.strip() or where.stderr.strip()}"
            )
        cmd = [str(python), "-I", "-m", "pytest", "-p", "no:cacheprovider", "tests", *pytest_args]
        proc = subprocess.run(cmd, cwd=scratch, env=env, capture_output=True, text=True)
        tail = (proc.stdout + proc.stderr).strip().splitlines()
        outcome.log.append(f"$ {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
        summary = tail[-1].strip("= ") if tail else "(no output)"
        if proc.returncode != 0:
            outcome.problems.append(f"{pkg.dist}: tests failed in isolation: {summary}")
        else:
            outcome.log.insert(0, summary)
    return outcome


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages", nargs="*", help="distribution names (default: every member)")
    parser.add_argument("--static-only", action="store_true", help="run the static checks only")
    parser.add_argument("--jobs", type=int, default=1, help="packages checked at once")
    parser.add_argument(
        "--pytest-args", default="", help="extra pytest arguments, e.g. \"-m 'not slow'\""
    )
    parser.add_argument(
        "--wheel-dir",
        type=Path,
        help="take the named packages' wheels from here (e.g. dist/ of `make build`) instead of building them",
    )
    parser.add_argument("--repo", type=Path, default=REPO, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    packages = load_packages(args.repo)
    selected = [canonicalize_name(n) for n in args.packages] or list(packages)
    unknown = [n for n in selected if n not in packages]
    if unknown:
        print(
            f"unknown package(s): {', '.join(unknown)}; members are {', '.join(packages)}",
            file=sys.stderr,
        )
        return 2

    if args.static_only:
        outcomes = [
            Outcome(packages[k].dist, static_problems(packages[k], packages)) for k in selected
        ]
    else:
        needed = {m.key for k in selected for m in closure(packages[k], packages)[0]}
        try:
            given = prebuilt_wheels(args.wheel_dir, selected) if args.wheel_dir else {}
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
        wheels = {
            key: given.get(key) or build_wheel(packages[key], Path(sys.executable))
            for key in sorted(needed)
        }
        pytest_args = shlex.split(args.pytest_args)
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = [
                pool.submit(check_package, packages[k], packages, wheels, pytest_args)
                for k in selected
            ]
            outcomes = []
            for future in futures:
                outcome = future.result()
                outcomes.append(outcome)
                _report(outcome)
    if args.static_only:
        for outcome in outcomes:
            _report(outcome)

    passed = sum(o.ok for o in outcomes)
    print(f"isolation: {passed} passed, {len(outcomes) - passed} failed")
    return 0 if passed == len(outcomes) else 1


def _report(outcome: Outcome) -> None:
    if outcome.ok:
        detail = f" ({outcome.log[0]})" if outcome.log else ""
        print(f"PASS {outcome.dist}{detail}", flush=True)
        return
    print(f"FAIL {outcome.dist}", flush=True)
    for problem in outcome.problems:
        print(f"  - {problem}", flush=True)
    if outcome.log:
        print(
            "  log of the last step:\n"
            + "\n".join("    " + line for line in outcome.log[-1].splitlines()[-40:]),
            flush=True,
        )


if __name__ == "__main__":
    raise SystemExit(main())
