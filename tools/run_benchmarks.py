"""Run the members' benchmarks and collect their tables into docs/.

Each ``packages/<dist>/benchmarks/bench_*.py`` is a script: ``python bench_x.py [--quick]`` measures
ours and a peer in the same process and prints markdown (a ``| metric | ours | peer | ratio |``
table and a line or two of context) on stdout. This runner executes each one in its own process,
writes ``docs/benchmarks/<dist>.md`` with the machine description, and rebuilds
``docs/benchmarks.md`` from every package page. ``--quick`` is CI's smoke mode: the script must
run; its numbers are not judged and, with ``--no-write``, not kept.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from monorepo import REPO, load_packages

DOCS = REPO / "docs"


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{cpu}, {os.cpu_count()} cores{mem}, Python {platform.python_version()}, {platform.system()} {platform.release()}"


def run_package(dist: str, path: Path, quick: bool) -> tuple[str, bool]:
    sections, ok = [], True
    for script in sorted((path / "benchmarks").glob("bench_*.py")):
        cmd = [sys.executable, str(script), *(["--quick"] if quick else [])]
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=path)
        took = time.perf_counter() - started
        status = "ok" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
        print(f"{dist}/{script.name}: {status} in {took:.1f} s", flush=True)
        if proc.returncode != 0:
            ok = False
            print(proc.stdout[-3000:] + proc.stderr[-3000:], flush=True)
        sections.append(
            f"### {script.stem}\n\n{proc.stdout.strip()}\n\n_{took:.0f} s wall time._\n"
        )
    return "\n".join(sections), ok


def rebuild_index() -> None:
    pages = sorted((DOCS / "benchmarks").glob("*.md"))
    parts = [
        "# Benchmarks\n",
        "Collected by `make bench` from each member's `benchmarks/bench_*.py`; every number below was "
        "measured by those scripts, ours and a peer in the same run. The machines are noisy: read the "
        "medians and the ratios, not single timings. Re-run one package with `make bench PKG=<dist>`.\n",
    ]
    # the index lives one directory above the pages: their ``../x.md`` links become ``x.md``
    parts += [page.read_text().replace("](../", "](") for page in pages]
    (DOCS / "benchmarks.md").write_text("\n".join(parts))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages", nargs="*", help="distribution names (default: every member)")
    parser.add_argument("--quick", action="store_true", help="smoke mode: small sizes, few repeats")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    args = parser.parse_args()

    # The umbrella's own benchmarks (the service under load) sit in benchmarks/ at the root.
    packages = {p.dist: p.path for p in load_packages().values()} | {"resontinex": REPO}
    selected = args.packages or list(packages)
    unknown = [d for d in selected if d not in packages]
    if unknown:
        print(f"unknown package(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    failed = []
    for dist in selected:
        body, ok = run_package(dist, packages[dist], args.quick)
        if not ok:
            failed.append(dist)
        if args.no_write or not body:
            continue
        (DOCS / "benchmarks").mkdir(parents=True, exist_ok=True)
        when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
        mode = " (quick mode)" if args.quick else ""
        page = f"## {dist}\n\nMeasured {when}{mode} on {machine_description()}.\n\n{body}"
        (DOCS / "benchmarks" / f"{dist}.md").write_text(page)
    if not args.no_write:
        rebuild_index()
    if failed:
        print(f"benchmarks failed in: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
