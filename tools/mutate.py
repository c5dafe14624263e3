"""Mutation testing of the members' core modules with mutmut, one module at a time.

mutmut 3 runs from a project directory whose ``pyproject.toml`` holds ``[tool.mutmut]``; the
members keep no tool tables (the root's apply), so for each module this tool lays out a scratch
project under ``.cache/mutate/<dist>/<module>/``: the package's ``src/`` and ``tests/``, and a
``pyproject.toml`` with the root's pytest options plus a ``[tool.mutmut]`` table that mutates only
that module and runs only the tests that exercise it. It then runs ``mutmut run`` there (one child
by default: the machines are shared) and prints

    | module | mutants | killed | survived | timeout | kill rate |

``survived`` counts every mutant no test detected, including those no selected test reaches.
The kill rate counts timeouts as detected, as mutmut's own score does. Exit 0 when every module
reaches ``--min-kill-rate``, 1 when one does not (the verdict), 2 on usage or unexpected errors.
Survivors are listed by name; ``mutmut show NAME`` in the scratch directory prints the diff.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from monorepo import REPO

WORK = REPO / ".cache" / "mutate"


@dataclass(frozen=True)
class CoreModule:
    """A module to mutate (relative to the package) and the test files that exercise it."""

    source: str
    tests: tuple[str, ...]


# The core modules of issue 15: the decision logic whose mutants must die. Test files that do
# not exist (yet) are skipped, so a module's test_mutants_* file can be added later.
CORE: dict[str, dict[str, CoreModule]] = {
    "resontinex-trust": {
        "gate": CoreModule(
            "src/resontinex/trust/composite_trust_gate.py",
            (
                "tests/test_gate.py",
                "tests/test_inputs.py",
                "tests/test_fail_closed.py",
                "tests/test_mutants_gate.py",
            ),
        ),
        "monitor": CoreModule(
            "src/resontinex/trust/monitor.py",
            ("tests/test_monitor.py", "tests/test_breakglass.py", "tests/test_mutants_monitor.py"),
        ),
    },
    "fusion-ops": {
        "governance": CoreModule(
            "src/fusion_ops/governance.py",
            ("tests/test_governance.py", "tests/test_mutants_governance.py"),
        ),
        "budget_analysis": CoreModule(
            "src/fusion_ops/budget_analysis.py",
            (
                "tests/test_budget_analysis.py",
                "tests/test_statistics.py",
                "tests/test_mutants_budget_analysis.py",
            ),
        ),
    },
    "cert-runtime": {
        "breaker": CoreModule(
            "src/cert/runtime/breaker.py",
            (
                "tests/test_breaker.py",
                "tests/test_breaker_stateful.py",
                "tests/test_mutants_breaker.py",
            ),
        ),
    },
    "cert-coordination": {
        "metrics": CoreModule(
            "src/cert/coordination/metrics.py",
            ("tests/test_metrics.py", "tests/test_mutants_metrics.py"),
        ),
    },
    "hbt-core": {
        "merkle": CoreModule(
            "src/hbt_core/merkle.py",
            ("tests/test_merkle.py", "tests/test_mutants_merkle.py"),
        ),
        "hdc": CoreModule(
            "src/hbt_core/hdc.py",
            ("tests/test_hdc.py", "tests/test_encoding.py", "tests/test_mutants_hdc.py"),
        ),
    },
}


@dataclass(frozen=True)
class NamedMutant:
    """A mutant issue 15 named as a survivor, applied by hand: mutmut does not generate all
    of them (it swaps operators, not ``max`` for ``mean`` or a halved α)."""

    dist: str
    source: str
    original: str
    mutated: str
    test: str


NAMED: dict[str, NamedMutant] = {
    "trust floor `<` -> `<=`": NamedMutant(
        "resontinex-trust",
        "src/resontinex/trust/composite_trust_gate.py",
        "if score < floor:",
        "if score <= floor:",
        "tests/test_mutants_gate.py",
    ),
    "trust monitor breaker `>` -> `>=`": NamedMutant(
        "resontinex-trust",
        "src/resontinex/trust/monitor.py",
        "errors / events > settings.circuit_breaker_error_rate",
        "errors / events >= settings.circuit_breaker_error_rate",
        "tests/test_mutants_monitor.py",
    ),
    "fusion one-sided 95% -> 97.5% bound": NamedMutant(
        "fusion-ops",
        "src/fusion_ops/budget_analysis.py",
        "alpha = 1.0 - confidence",
        "alpha = (1.0 - confidence) / 2",
        "tests/test_mutants_budget_analysis.py",
    ),
    "coordination Omega baseline max -> mean (point)": NamedMutant(
        "cert-coordination",
        "src/cert/coordination/metrics.py",
        "coord.mean() - base.max()",
        "coord.mean() - base.mean()",
        "tests/test_mutants_metrics.py",
    ),
    "coordination Omega baseline max -> mean (bootstrap)": NamedMutant(
        "cert-coordination",
        "src/cert/coordination/metrics.py",
        "coord_means - base_samples.max(axis=1)",
        "coord_means - base_samples.mean(axis=1)",
        "tests/test_mutants_metrics.py",
    ),
    "hbt Merkle inclusion `sn != 0` check removed": NamedMutant(
        "hbt-core",
        "src/hbt_core/merkle.py",
        '    if sn != 0:\n        raise IntegrityError("inclusion proof is shorter than the tree requires")\n',
        "",
        "tests/test_mutants_merkle.py",
    ),
}


PYTEST_ARGS = ("--import-mode=importlib",)


def check_named(label: str, named: NamedMutant) -> str:
    """Apply one named mutant to a scratch copy and run its test file: killed or survived."""
    pkg = REPO / "packages" / named.dist
    work = WORK / "named" / re.sub(r"\W+", "-", label).strip("-")
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(pkg / "src", work / "src", ignore=IGNORE)
    shutil.copytree(pkg / "tests", work / "tests", ignore=IGNORE)
    target = work / named.source
    text = target.read_text("utf-8")
    if text.count(named.original) != 1:
        raise MutateError(f"{label}: {named.source} no longer holds {named.original!r} once")
    target.write_text(text.replace(named.original, named.mutated), "utf-8")
    env = dict(os.environ, PYTHONPATH=str(work / "src"))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-x",
            "-p",
            "no:cacheprovider",
            *PYTEST_ARGS,
            named.test,
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode not in (0, 1):
        raise MutateError(f"{label}: pytest exited {proc.returncode}: {proc.stdout[-500:]}")
    return "killed" if proc.returncode == 1 else "survived"


IGNORE = shutil.ignore_patterns("__pycache__", ".hypothesis", ".pytest_cache")
NOT_CHECKED = "not checked"
DETECTED = {"killed", "timeout", "caught by type check"}


class MutateError(Exception):
    """The mutation run could not be carried out (not a verdict on the tests)."""


@dataclass
class ModuleResult:
    dist: str
    module: str
    statuses: dict[str, str]

    def count(self, *names: str) -> int:
        return sum(1 for s in self.statuses.values() if s in names)

    @property
    def survivors(self) -> list[str]:
        """Mutants a finished check left undetected (including those no selected test reaches)."""
        return sorted(n for n, s in self.statuses.items() if s not in DETECTED and s != NOT_CHECKED)

    @property
    def unchecked(self) -> list[str]:
        """Mutants an interrupted run never got to; ``--survivors-only`` checks them."""
        return sorted(n for n, s in self.statuses.items() if s == NOT_CHECKED)

    @property
    def kill_rate(self) -> float:
        """Detected over checked mutants (an interrupted run reports what it did check)."""
        checked = len(self.statuses) - len(self.unchecked)
        return (checked - len(self.survivors)) / checked if checked else 0.0

    def row(self) -> dict[str, object]:
        return {
            "module": f"{self.dist}:{self.module}",
            "mutants": len(self.statuses),
            "killed": self.count("killed", "caught by type check"),
            "survived": len(self.survivors),
            "timeout": self.count("timeout"),
            "kill_rate": round(self.kill_rate, 4),
            "not_checked": len(self.unchecked),
        }


def pyproject_text(module: CoreModule) -> str:
    """The scratch project's pyproject: the root's pytest options and a one-module mutmut table."""
    root = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))
    pytest_opts = root["tool"]["pytest"]["ini_options"]
    lines = ["[tool.pytest.ini_options]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in pytest_opts.items()]
    lines += [
        "",
        "[tool.mutmut]",
        'source_paths = ["src"]',
        f"only_mutate = {json.dumps([module.source])}",
        'pytest_add_cli_args_test_selection = ["tests"]',
        # Hypothesis keeps its example database in the scratch tree; no cache provider writes.
        'pytest_add_cli_args = ["-p", "no:cacheprovider"]',
        # A mutant gets 10x its tests' CPU time (mutmut's default, 30x, lets an endless loop in
        # an exhaustive Merkle test hold a shared machine for minutes). CPU time, not wall time,
        # so a loaded machine does not turn slow runs into timeouts.
        "timeout_multiplier = 5.0",
        "",
    ]
    return "\n".join(lines)


def copy_tests(dist: str, module: CoreModule, work: Path) -> None:
    """Copy the package's tests/ without the test files that do not exercise the module.

    mutmut selects ``tests`` as a whole, so a test file added later (a ``test_mutants_*``
    file) joins a rerun without changing the config, which would discard every verdict.
    """
    keep = {Path(t).name for t in module.tests}

    def ignore(directory: str, names: list[str]) -> set[str]:
        dropped = set(IGNORE(directory, names))
        return dropped | {
            n for n in names if n.startswith("test_") and n.endswith(".py") and n not in keep
        }

    target = work / "tests"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(REPO / "packages" / dist / "tests", target, ignore=ignore)


def prepare(dist: str, name: str, module: CoreModule) -> Path:
    """Lay out a fresh scratch project for one module; return its directory."""
    pkg = REPO / "packages" / dist
    if not (pkg / module.source).is_file():
        raise MutateError(f"{dist}:{name}: {module.source} does not exist")
    if not any((pkg / t).is_file() for t in module.tests):
        raise MutateError(f"{dist}:{name}: none of its test files exist: {list(module.tests)}")
    work = WORK / dist / name
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(pkg / "src", work / "src", ignore=IGNORE)
    copy_tests(dist, module, work)
    (work / "pyproject.toml").write_text(pyproject_text(module), "utf-8")
    return work


def mutmut_executable() -> str:
    """The mutmut next to this interpreter (mutmut asks to be run as `mutmut`, not `-m`)."""
    candidate = Path(sys.executable).parent / "mutmut"
    found = str(candidate) if candidate.exists() else shutil.which("mutmut")
    if found is None:
        raise MutateError("mutmut is not installed (configs/requirements-dev.txt; `make install`)")
    return found


def parse_results(text: str) -> dict[str, str]:
    """`mutmut results --all true` prints `    <mutant name>: <status>` per mutant."""
    statuses: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and name and "__mutmut_" in name:
            statuses[name] = status.strip()
    return statuses


# mutmut forks one child per mutant from a process that has already run the tests; numba's
# default OpenMP threading layer then aborts the child ("fork() called from a process already
# using GNU OpenMP"), which mutmut reports as "suspicious". The workqueue layer survives a fork.
MUTMUT_ENV = dict(os.environ, NUMBA_THREADING_LAYER="workqueue")


def mutmut(work: Path, *args: str, quiet: bool = False) -> str:
    """Run one mutmut command in the scratch project; its stdout (when captured)."""
    proc = subprocess.run(
        [mutmut_executable(), *args],
        cwd=work,
        env=MUTMUT_ENV,
        stdout=subprocess.PIPE if quiet or args[0] == "results" else None,
        stderr=subprocess.PIPE if args[0] == "results" else None,
        text=True,
    )
    if proc.returncode != 0:
        detail = (proc.stderr or "").strip()[-500:]
        raise MutateError(f"`mutmut {args[0]}` exited {proc.returncode} in {work} {detail}".strip())
    return proc.stdout or ""


def statuses_of(work: Path) -> dict[str, str]:
    statuses = parse_results(mutmut(work, "results", "--all", "true"))
    if not statuses:
        raise MutateError(f"mutmut produced no mutants (see {work})")
    return statuses


def run_module(
    dist: str,
    name: str,
    max_children: int,
    *,
    quiet: bool,
    survivors_only: bool,
    report_only: bool = False,
) -> ModuleResult:
    """Mutate one module; with ``survivors_only``, re-test only the last run's survivors.

    Re-testing survivors is sound only when tests were added, not changed: a mutant the old
    tests killed stays killed. The scratch project keeps the mutants and their verdicts.
    """
    module = CORE[dist][name]
    children = str(max_children)
    if survivors_only or report_only:
        work = WORK / dist / name
        if not (work / "mutants").is_dir():
            raise MutateError(
                f"{dist}:{name}: no earlier run in {work}; run without --survivors-only"
            )
        before = ModuleResult(dist, name, statuses_of(work))
        if report_only:
            return before
        copy_tests(dist, module, work)
        pending = before.survivors + before.unchecked
        if pending:
            mutmut(work, "run", "--max-children", children, *pending, quiet=quiet)
    else:
        work = prepare(dist, name, module)
        mutmut(work, "run", "--max-children", children, quiet=quiet)
    return ModuleResult(dist, name, statuses_of(work))


def table(results: list[ModuleResult]) -> str:
    lines = [
        "| module | mutants | killed | survived | timeout | kill rate |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        row = r.row()
        lines.append(
            f"| {row['module']} | {row['mutants']} | {row['killed']} | {row['survived']} "
            f"| {row['timeout']} | {r.kill_rate:.1%} |"
        )
    lines += [
        f"\n{r.dist}:{r.module}: {len(r.unchecked)} mutants not checked (run interrupted)"
        for r in results
        if r.unchecked
    ]
    return "\n".join(lines)


def selected(dist: str | None, modules: list[str]) -> list[tuple[str, str]]:
    """(dist, module) pairs to run; an unknown name is a usage error naming the choices."""
    dists = [dist] if dist else list(CORE)
    for d in dists:
        if d not in CORE:
            raise MutateError(f"PKG: {d!r} has no core modules; choose from {sorted(CORE)}")
    pairs = [(d, m) for d in dists for m in CORE[d] if not modules or m in modules]
    unknown = set(modules) - {m for _, m in pairs}
    if unknown:
        choices = sorted({m for d in dists for m in CORE[d]})
        raise MutateError(f"MODULE: unknown {sorted(unknown)}; choose from {choices}")
    return pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("package", nargs="?", help="a member distribution (default: all)")
    parser.add_argument(
        "--module", action="append", default=[], help="core module name (repeatable)"
    )
    parser.add_argument("--max-children", type=int, default=1, help="parallel mutant workers")
    parser.add_argument("--min-kill-rate", type=float, default=0.9, help="target per module")
    parser.add_argument("--list", action="store_true", help="list the core modules and exit")
    parser.add_argument(
        "--named",
        action="store_true",
        help="apply the survivors issue 15 named, by hand, and run the tests meant to kill them",
    )
    parser.add_argument("--quiet", action="store_true", help="hide mutmut's progress output")
    parser.add_argument(
        "--survivors-only",
        action="store_true",
        help="re-test only the previous run's survivors against the current tests",
    )
    parser.add_argument(
        "--report-only", action="store_true", help="print the last run's table, run nothing"
    )
    parser.add_argument("--output-format", choices=("text", "json"), default="text")
    args = parser.parse_args(argv)
    try:
        if args.max_children < 1:
            raise MutateError(f"--max-children: must be >= 1, got {args.max_children}")
        if not 0.0 <= args.min_kill_rate <= 1.0:
            raise MutateError(f"--min-kill-rate: must be in [0, 1], got {args.min_kill_rate}")
        if args.named:
            verdicts = {label: check_named(label, m) for label, m in NAMED.items()}
            print("| named mutant | test | verdict |\n| --- | --- | --- |")
            for label, verdict in verdicts.items():
                print(f"| {label} | {NAMED[label].dist}/{NAMED[label].test} | {verdict} |")
            return 0 if all(v == "killed" for v in verdicts.values()) else 1
        pairs = selected(args.package, args.module)
        if args.list:
            for d, m in pairs:
                print(f"{d}:{m}\t{CORE[d][m].source}")
            return 0
        results = [
            run_module(
                d,
                m,
                args.max_children,
                quiet=args.quiet,
                survivors_only=args.survivors_only,
                report_only=args.report_only,
            )
            for d, m in pairs
        ]
    except MutateError as exc:
        print(f"mutate: {exc}", file=sys.stderr)
        return 2
    if args.output_format == "json":
        rows = [r.row() | {"survivors": r.survivors} for r in results]
        print(json.dumps({"min_kill_rate": args.min_kill_rate, "modules": rows}, indent=2))
    else:
        print(table(results))
        for r in results:
            if r.survivors:
                print(
                    f"\nsurvivors in {r.dist}:{r.module} (`mutmut show NAME` in {WORK / r.dist / r.module}):"
                )
                print("\n".join(f"  {n}: {r.statuses[n]}" for n in r.survivors))
    below = [r for r in results if r.kill_rate < args.min_kill_rate or r.unchecked]
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
