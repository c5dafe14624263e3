"""``cert-coordination``: inspect the price table, estimate a request's cost, run the demo.

Exit codes: 0 ok, 2 usage or input error (unknown model, malformed price file...) or any
unexpected error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cert.coordination.errors import CoordinationError
from cert.coordination.pricing import PriceTable
from cert.runtime.logging import redact


def _table(path: str | None) -> PriceTable:
    return PriceTable.from_yaml(path) if path else PriceTable.default()


def _prices(args: argparse.Namespace) -> int:
    table = _table(args.prices)
    rows: list[dict[str, Any]] = []
    for model in table.models:
        price = table.price(model)
        base = price.base
        rows.append(
            {
                "model": model,
                "input_per_mtok": None if base is None else str(base.input),
                "output_per_mtok": None if base is None else str(base.output),
                "tiers": len(price.tiers),
            }
        )
    if args.output_format == "json":
        document = {"as_of": table.as_of, "currency": table.currency, "models": rows}
        print(json.dumps({**document, "aliases": table.aliases}))
    else:
        print(f"prices as of {table.as_of} ({table.currency} per million tokens)")
        for row in rows:
            model, price_in, price_out = row["model"], row["input_per_mtok"], row["output_per_mtok"]
            print(f"  {model:<28} in {price_in!s:>7}  out {price_out!s:>7}")
        for alias, target in sorted(table.aliases.items()):
            print(f"  {alias:<28} = {target}")
        print("  (a dated id <model>-YYYYMMDD is priced as <model>)")
    return 0


def _estimate(args: argparse.Namespace) -> int:
    worst = _table(args.prices).worst_case(
        args.model, prompt_tokens=args.prompt_tokens, max_tokens=args.max_tokens
    )
    value = None if worst is None else str(worst)
    if args.output_format == "json":
        print(json.dumps({"model": args.model, "worst_case": value}))
    else:
        print(f"worst-case cost of one request on {args.model}: {value or 'unpriced'}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from cert.coordination.demo import showcase

    print(showcase(Path(args.out)))
    return 0


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cert-coordination", description=__doc__.splitlines()[0])
    parser.add_argument("--prices", help="price table YAML overriding the shipped one")
    parser.add_argument("--output-format", choices=("text", "json"), default="text")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("prices", help="list the price table").set_defaults(run=_prices)
    est = sub.add_parser("estimate", help="worst-case cost of one request")
    est.add_argument("--model", required=True)
    est.add_argument("--prompt-tokens", type=_non_negative, required=True)
    est.add_argument("--max-tokens", type=_non_negative, required=True)
    est.set_defaults(run=_estimate)
    demo = sub.add_parser("demo", help="offline coordination measurement (scripted backend)")
    demo.add_argument("--out", default="demo-output/cert-coordination")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except CoordinationError as exc:
        print(f"error: {redact(exc.message)}", file=sys.stderr)
        return 2
    except Exception as exc:  # exit 1 is reserved for a policy verdict, never a crash
        print(f"error: unexpected {type(exc).__name__}: {redact(str(exc))}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
