"""cert-trajectory CLI: analyze a prompt, score a response, build the tiny offline model.

Exit codes: 0 the response passed the quality check, 1 it failed, 2 usage or input error or
any unexpected error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from cert.runtime.errors import CERTError
from cert.runtime.logging import redact
from cert.trajectory.config import TrajectoryConfig
from cert.trajectory.errors import ConfigError
from cert.trajectory.result import TrajectoryResult

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _config(args: argparse.Namespace) -> TrajectoryConfig:
    values: dict[str, Any] = {}
    if args.config:
        try:
            values = json.loads(Path(args.config).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(
                f"cannot read config file {args.config}: {exc}",
                context={"field": "--config", "value": args.config},
            ) from exc
    config = TrajectoryConfig.from_mapping(values)
    overrides = {
        name: getattr(args, name)
        for name in (
            "max_new_tokens",
            "temperature",
            "top_p",
            "seed",
            "max_perplexity",
            "max_mean_entropy",
            "max_low_prob_fraction",
        )
        if getattr(args, name, None) is not None
    }
    return replace(config, **overrides)


def _render(result: TrajectoryResult, fmt: str) -> str:
    if fmt == "json":
        return result.to_json(indent=2)
    ppl = "n/a" if result.perplexity is None else f"{result.perplexity:.3f}"
    entropy = "n/a" if result.mean_entropy is None else f"{result.mean_entropy:.3f}"
    verdict = (
        "PASSED"
        if result.passed_quality_check
        else "FAILED (" + ", ".join(result.failed_checks) + ")"
    )
    lines = [
        f"mode:         {result.mode} ({result.decoding.get('strategy')})",
        f"text:         {result.text!r}",
        f"tokens:       {result.token_count} (finish: {result.finish_reason}"
        + (", truncated" if result.truncated else "") + ")",
        f"perplexity:   {ppl}",
        f"mean entropy: {entropy} nats",
        f"low-p tokens: {result.low_prob_count}",
        f"quality:      {verdict}",
        "",
        f"{'#':>3} {'token':<16} {'log p':>9} {'entropy':>8} {'margin':>7}",
    ]  # fmt: skip
    lines += [
        f"{t.position:>3} {repr(t.token)[:16]:<16} "
        f"{t.log_prob:>9.3f} {t.entropy:>8.3f} {t.margin:>7.3f}"
        for t in result.tokens
    ]
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    if args.command == "build-tiny-model":
        from cert.trajectory.tiny import TinyModelSpec, build_tiny_model

        path = build_tiny_model(args.out_dir, TinyModelSpec(steps=args.steps))
        print(str(path))
        return EXIT_OK

    from cert.trajectory.monitor import HamiltonianMonitor

    config = _config(args)
    monitor = HamiltonianMonitor(
        args.model,
        config=config,
        device=args.device,
        trust_remote_code=args.trust_remote_code,
        cache_size=0,
        timeout=args.timeout,
    )
    with monitor:
        if args.command == "analyze":
            result = monitor.analyze(args.prompt)
        else:
            result = monitor.score(
                args.prompt,
                args.response,
                chat_template=args.chat_template,
                system=args.system,
                tokenisation=args.tokenisation,
            )
    if args.plot:
        from cert.trajectory.plot import plot

        plot(result, args.plot)
    print(_render(result, args.output_format))
    return EXIT_OK if result.passed_quality_check else EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cert-trajectory",
        description="Per-token perplexity and entropy of a causal LM's responses.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def model_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--model", required=True, help="local path (or hub name) of the model")
        sub.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
        sub.add_argument(
            "--trust-remote-code",
            action="store_true",
            help="allow code shipped with the checkpoint to run (off by default)",
        )
        sub.add_argument("--config", help="JSON file with TrajectoryConfig fields")
        sub.add_argument("--max-perplexity", type=float)
        sub.add_argument("--max-mean-entropy", type=float)
        sub.add_argument("--max-low-prob-fraction", type=float)
        sub.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
        sub.add_argument("--plot", help="write a PNG of surprise and entropy per token here")
        sub.add_argument("--output-format", choices=("text", "json"), default="text")

    analyze = commands.add_parser("analyze", help="generate from a prompt and measure each token")
    analyze.add_argument("prompt")
    model_options(analyze)
    analyze.add_argument("--max-new-tokens", type=int)
    analyze.add_argument("--temperature", type=float, help="0 (default) is greedy")
    analyze.add_argument("--top-p", type=float)
    analyze.add_argument("--seed", type=int)

    score = commands.add_parser("score", help="teacher-force a given response and measure it")
    score.add_argument("--prompt", required=True)
    score.add_argument("--response", required=True)
    score.add_argument(
        "--chat-template",
        action="store_true",
        help="condition on the tokenizer's chat template (prompt as the user turn)",
    )
    score.add_argument("--system", help="system message for --chat-template")
    score.add_argument(
        "--tokenisation",
        choices=("joint", "separate"),
        default="joint",
        help="tokenise prompt and response as one text (default) or separately",
    )
    model_options(score)

    build = commands.add_parser("build-tiny-model", help="train the tiny offline demo model")
    build.add_argument("out_dir")
    build.add_argument("--steps", type=int, default=300)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors and 0 on --help
        return int(exc.code or 0)
    try:
        return _run(args)
    except CERTError as exc:
        print(f"error: {type(exc).__name__}: {redact(exc.message)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # never 1 (the "failed check" verdict) for a crash
        print(f"error: unexpected {type(exc).__name__}: {redact(str(exc))}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
