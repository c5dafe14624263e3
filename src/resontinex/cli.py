"""The `resontinex` command: what is installed, and the offline demo of every member.

Members contribute to the demo through the entry-point group ``resontinex.demo``: each entry
is a callable ``showcase(out_dir: pathlib.Path) -> str`` that runs offline, writes its
artifacts under ``out_dir`` and returns a readable summary. The umbrella never imports a
member it does not find installed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path

from resontinex.__about__ import __version__
from resontinex.members import MEMBERS, installed_version

DEMO_ENTRY_POINT_GROUP = "resontinex.demo"

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _installed_members() -> list[dict[str, str | None]]:
    return [
        {
            "dist": m.dist,
            "import": m.import_name,
            "extra": m.extra,
            "version": installed_version(m.dist),
        }
        for m in MEMBERS
    ]


def cmd_version(args: argparse.Namespace) -> int:
    rows = _installed_members()
    if args.output_format == "json":
        print(json.dumps({"resontinex": __version__, "members": rows}, indent=2))
        return EXIT_OK
    print(f"resontinex {__version__}")
    for row in rows:
        print(f"  {row['dist']:<20} {row['version'] or 'not installed'}")
    return EXIT_OK


def _demo_order(name: str) -> int:
    """Showcases run in member order; unknown names go last, alphabetically."""
    dists = [m.dist for m in MEMBERS]
    return dists.index(name) if name in dists else len(dists)


def cmd_demo(args: argparse.Namespace) -> int:
    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"RESONTINEX demo (umbrella {__version__}); artifacts in {out_dir}/\n")
    print("Installed members:")
    for row in _installed_members():
        print(f"  {row['dist']:<20} {row['version'] or 'not installed'}")

    showcases = sorted(
        entry_points(group=DEMO_ENTRY_POINT_GROUP), key=lambda e: (_demo_order(e.name), e.name)
    )
    failed: list[str] = []
    for ep in showcases:
        print(f"\n== {ep.name} ==")
        started = time.perf_counter()
        try:
            showcase = ep.load()
            summary = showcase(out_dir / ep.name)
        except Exception:  # a demo reports every member's failure, then exits non-zero
            failed.append(ep.name)
            traceback.print_exc()
            continue
        print(summary.rstrip())
        print(f"({ep.name}: {time.perf_counter() - started:.1f} s)")
    if not showcases:
        print("\nNo member showcases are installed yet.")
    if failed:
        print(f"\nDemo failed for: {', '.join(failed)}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="resontinex", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"resontinex {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p_version = sub.add_parser("version", help="list each installed member and its version")
    p_version.add_argument("--output-format", choices=("text", "json"), default="text")
    p_version.set_defaults(func=cmd_version)

    p_demo = sub.add_parser("demo", help="run every installed member's offline showcase")
    p_demo.add_argument("--out", type=Path, default=Path("demo-output"), help="artifact directory")
    p_demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
