"""Budget analysis: compare a candidate against its baseline from raw samples, with uncertainty.

Statistics (all from successful samples; failed samples only count towards error rates):

- **Token delta** = (Σ_s mean candidate tokens_s − Σ_s mean baseline tokens_s) / Σ_s mean
  baseline tokens_s × 100, where tokens = input + output and s runs over scenarios. Every scenario
  weighs by its mean cost, i.e. the delta of the whole scenario set's expected bill.
- **P95 latency** of the candidate, pooled over scenarios, with numpy's default (linear
  interpolation between order statistics, Hyndman–Fan type 7). The latency delta is the relative
  change of that P95 against the baseline's.
- **Confidence intervals** by a stratified percentile bootstrap: each replicate resamples the runs
  of every scenario and side with replacement (a run's tokens and latency stay together). The
  interval is [α, 1−α] with α = 1 − confidence, so its lower end is a one-sided lower confidence
  bound at level ``confidence``. Replicates are computed in chunks of at most
  ``chunk_elements`` resampled runs per side, so memory stays bounded whatever the report size;
  every scenario side draws from its own generator (``SeedSequence(seed).spawn``), so the result
  does not depend on the chunk size.
- **Error rate**: the share of failed candidate runs; above ``max_error_rate`` it warns, above
  ``block_error_rate`` it blocks.

Verdict: a threshold is breached only when the lower bound clears it, so noise alone does not
block. block beats warn beats pass. Missing or malformed data, or a token delta that is
undefined in some replicate (a baseline total of 0), gives ``error`` (exit 2), never ``pass``.
Exit codes: 0 pass/warn, 1 block, 2 error (the CLI maps any unexpected failure to 2 as well).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fusion_ops import _validate
from fusion_ops.cli_support import guarded_main
from fusion_ops.errors import InvalidInputError, ReportError
from fusion_ops.report import BudgetReport, Sample, load_report

__all__ = [
    "CHUNK_ELEMENTS",
    "COMMENT_MARKER",
    "EXIT_CODES",
    "GITHUB_OUTPUT_KEYS",
    "BudgetAnalysis",
    "Finding",
    "Interval",
    "ScenarioSummary",
    "Thresholds",
    "analyze_budget_metrics",
    "analyze_report",
    "main",
    "render",
]

COMMENT_MARKER = "<!-- fusion-budget-gate -->"
EXIT_CODES = {"pass": 0, "warn": 0, "block": 1, "error": 2}
GITHUB_OUTPUT_KEYS = (
    "budget_status",
    "exit_code",
    "token_delta",
    "token_delta_low",
    "token_delta_high",
    "latency_p95",
    "latency_p95_low",
    "latency_p95_high",
    "latency_delta",
    "error_rate",
)
MIN_SAMPLES = 2
MAX_BOOTSTRAP = 100_000
CHUNK_ELEMENTS = 1 << 20  # resampled runs held per side and chunk: ~8 MB of float64
_RANK = {"pass": 0, "warn": 1, "block": 2, "error": 3}


@dataclass(frozen=True)
class Thresholds:
    token_warn: float = 12.0
    token_block: float = 25.0
    latency_warn: float | None = None
    latency_block: float | None = None
    max_error_rate: float = 0.05
    block_error_rate: float = 0.20

    def __post_init__(self) -> None:
        _check_thresholds(self)


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class Finding:
    level: str  # warn | block | error
    metric: str
    message: str


@dataclass(frozen=True)
class ScenarioSummary:
    id: str
    baseline_mean_tokens: float
    candidate_mean_tokens: float
    token_delta_pct: float | None
    baseline_ok: int
    baseline_total: int
    candidate_ok: int
    candidate_total: int
    candidate_overlay: str | None


@dataclass(frozen=True)
class BudgetAnalysis:
    status: str
    thresholds: Thresholds
    confidence: float
    n_bootstrap: int
    findings: tuple[Finding, ...] = ()
    token_delta: Interval | None = None
    latency_p95: Interval | None = None
    baseline_latency_p95: float | None = None
    latency_delta: Interval | None = None
    baseline_error_rate: float | None = None
    error_rate: float | None = None
    scenarios: tuple[ScenarioSummary, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    @property
    def success_rate(self) -> float | None:
        return None if self.error_rate is None else 1.0 - self.error_rate

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["exit_code"] = self.exit_code
        out["success_rate"] = self.success_rate
        out["quantile_definition"] = "numpy linear (Hyndman-Fan type 7)"
        return out


def _check_thresholds(thresholds: Thresholds) -> None:
    t = thresholds
    _validate.finite_number("token_warn", t.token_warn, minimum=0)
    _validate.finite_number("token_block", t.token_block, minimum=0)
    if t.token_warn > t.token_block:
        raise InvalidInputError(
            f"token_warn must not exceed token_block, got {t.token_warn} > {t.token_block}"
        )
    for name in ("latency_warn", "latency_block"):
        value = getattr(t, name)
        if value is not None:
            _validate.finite_number(name, value, minimum=0, exclusive_minimum=True)
    if (
        t.latency_warn is not None
        and t.latency_block is not None
        and t.latency_warn > t.latency_block
    ):
        raise InvalidInputError(
            f"latency_warn must not exceed latency_block, got {t.latency_warn} > {t.latency_block}"
        )
    _validate.finite_number("max_error_rate", t.max_error_rate, minimum=0, maximum=1)
    _validate.finite_number("block_error_rate", t.block_error_rate, minimum=0, maximum=1)
    if t.max_error_rate > t.block_error_rate:
        raise InvalidInputError(
            f"max_error_rate must not exceed block_error_rate, got {t.max_error_rate} > "
            f"{t.block_error_rate}"
        )


Side = tuple[np.ndarray, np.ndarray]  # one scenario side: (total tokens, latency ms) per run


@dataclass(frozen=True)
class _Replicates:
    """Per replicate: Σ over scenarios of the resampled mean tokens, and the pooled P95."""

    tokens: np.ndarray
    p95: np.ndarray


def _bootstrap_side(
    sides: Sequence[Side], seed: np.random.SeedSequence, n_boot: int, chunk_elements: int | None
) -> _Replicates:
    """Stratified bootstrap of one side in chunks of replicates (``None``: all at once).

    Memory is about three arrays of ``chunk_elements`` values (indices, pooled latencies and
    the quantile's partition), instead of ``n_boot`` × total runs.
    """
    rngs = [np.random.default_rng(child) for child in seed.spawn(len(sides))]
    runs = sum(len(tokens) for tokens, _ in sides)
    chunk = n_boot if chunk_elements is None else max(1, min(n_boot, chunk_elements // runs))
    tokens_out = np.zeros(n_boot)
    p95_out = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        pooled = np.empty((stop - start, runs))
        column = 0
        for rng, (tokens, latency) in zip(rngs, sides, strict=True):
            picks = rng.integers(0, len(tokens), size=(stop - start, len(tokens)))
            tokens_out[start:stop] += tokens[picks].mean(axis=1)
            pooled[:, column : column + len(tokens)] = latency[picks]
            column += len(tokens)
        p95_out[start:stop] = np.quantile(pooled, 0.95, axis=1, overwrite_input=True)
    return _Replicates(tokens_out, p95_out)


def _interval(estimate: float, replicates: np.ndarray, confidence: float) -> Interval:
    alpha = 1.0 - confidence
    low, high = np.quantile(replicates, [alpha, 1.0 - alpha])
    return Interval(round(estimate, 4), round(float(low), 4), round(float(high), 4))


def _grade(
    metric: str, unit: str, ci: Interval, warn: float | None, block: float | None
) -> Finding | None:
    """A breach only when the lower confidence bound clears the threshold."""
    if block is not None and ci.low > block:
        level, limit = "block", block
    elif warn is not None and ci.low > warn:
        level, limit = "warn", warn
    else:
        return None
    value = _fmt(ci.estimate, unit, signed=unit == "%")
    return Finding(
        level,
        metric,
        f"{metric} {value} (lower bound {ci.low:.2f}{unit}) exceeds the "
        f"{level} threshold {limit:g}{unit}",
    )


def _sample_arrays(
    base_ok: Sequence[Sample], cand_ok: Sequence[Sample]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Tokens and latencies of both sides; None when any is not a finite number >= 0 (a report
    built in code skips the parser's checks: a NaN or a huge int must not reach the statistics)."""
    try:
        arrays = (
            np.array([s.total_tokens for s in base_ok], dtype=float),
            np.array([s.total_tokens for s in cand_ok], dtype=float),
            np.array([s.latency_ms for s in base_ok], dtype=float),
            np.array([s.latency_ms for s in cand_ok], dtype=float),
        )
    except (OverflowError, TypeError, ValueError):
        return None
    if not all(bool(np.all(np.isfinite(a) & (a >= 0))) for a in arrays):
        return None
    return arrays


def analyze_report(
    report: BudgetReport,
    thresholds: Thresholds | None = None,
    *,
    confidence: float = 0.95,
    n_bootstrap: int = 2000,
    seed: int = 0,
    chunk_elements: int | None = CHUNK_ELEMENTS,
) -> BudgetAnalysis:
    """Analyse an in-memory report (see the module docstring for the statistics).

    ``chunk_elements`` bounds the bootstrap's working memory; ``None`` materialises every
    replicate at once (the naive method, kept for comparison: same numbers, unbounded memory).
    """
    thresholds = thresholds or Thresholds()
    if not isinstance(thresholds, Thresholds):
        raise InvalidInputError(f"thresholds must be Thresholds, got {type(thresholds).__name__}")
    _check_thresholds(thresholds)
    _validate.finite_number("confidence", confidence, minimum=0.5, maximum=0.999)
    _validate.integer("n_bootstrap", n_bootstrap, minimum=100, maximum=MAX_BOOTSTRAP)
    _validate.integer("seed", seed, minimum=0)
    if chunk_elements is not None:
        _validate.integer("chunk_elements", chunk_elements, minimum=1)
    base_args: dict[str, Any] = {
        "thresholds": thresholds,
        "confidence": confidence,
        "n_bootstrap": n_bootstrap,
        "metadata": report.metadata,
    }
    problems: list[Finding] = []
    summaries: list[ScenarioSummary] = []
    sides: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    counts = {"base_ok": 0, "base_all": 0, "cand_ok": 0, "cand_all": 0}
    for scenario in report.scenarios:
        base_ok = [s for s in scenario.baseline if s.ok]
        cand_ok = [s for s in scenario.candidate if s.ok]
        counts["base_ok"] += len(base_ok)
        counts["base_all"] += len(scenario.baseline)
        counts["cand_ok"] += len(cand_ok)
        counts["cand_all"] += len(scenario.candidate)
        if len(base_ok) < MIN_SAMPLES or len(cand_ok) < MIN_SAMPLES:
            problems.append(
                Finding(
                    "error",
                    "samples",
                    f"scenario {scenario.id!r} has {len(base_ok)} baseline and {len(cand_ok)} "
                    f"candidate successful samples; at least {MIN_SAMPLES} per side are needed",
                )
            )
            continue
        arrays = _sample_arrays(base_ok, cand_ok)
        if arrays is None:
            problems.append(
                Finding(
                    "error",
                    "samples",
                    f"scenario {scenario.id!r} has a token count or latency that is not a "
                    "finite number >= 0",
                )
            )
            continue
        sides.append(arrays)
        bmean, cmean = float(arrays[0].mean()), float(arrays[1].mean())
        summaries.append(
            ScenarioSummary(
                id=scenario.id,
                baseline_mean_tokens=round(bmean, 3),
                candidate_mean_tokens=round(cmean, 3),
                token_delta_pct=round((cmean - bmean) / bmean * 100, 4) if bmean else None,
                baseline_ok=len(base_ok),
                baseline_total=len(scenario.baseline),
                candidate_ok=len(cand_ok),
                candidate_total=len(scenario.candidate),
                candidate_overlay=scenario.candidate_overlay,
            )
        )
    if not counts["base_all"] or not counts["cand_all"]:
        problems.append(Finding("error", "samples", "the report holds no samples"))
        return BudgetAnalysis(status="error", findings=tuple(problems), **base_args)
    base_error_rate = 1 - counts["base_ok"] / counts["base_all"]
    error_rate = 1 - counts["cand_ok"] / counts["cand_all"]
    base_args |= {
        "scenarios": tuple(summaries),
        "baseline_error_rate": round(base_error_rate, 6),
        "error_rate": round(error_rate, 6),
    }
    base_total = sum(float(b.mean()) for b, _, _, _ in sides)
    if not problems and base_total <= 0:
        problems.append(Finding("error", "token_delta", "baseline mean token total is 0"))
    if problems:
        return BudgetAnalysis(status="error", findings=tuple(problems), **base_args)

    base_seed, cand_seed = np.random.SeedSequence(seed).spawn(2)
    base = _bootstrap_side(
        [(b, bl) for b, _, bl, _ in sides], base_seed, n_bootstrap, chunk_elements
    )
    cand = _bootstrap_side(
        [(c, cl) for _, c, _, cl in sides], cand_seed, n_bootstrap, chunk_elements
    )
    zero = int(np.count_nonzero(base.tokens <= 0))
    if zero:
        problem = (
            f"the baseline token total is 0 in {zero} of {n_bootstrap} bootstrap replicates "
            "(scenarios with zero-token runs), so the token delta is undefined"
        )
        return BudgetAnalysis(
            status="error", findings=(Finding("error", "token_delta", problem),), **base_args
        )
    cand_total = sum(float(c.mean()) for _, c, _, _ in sides)
    token_delta = _interval(
        (cand_total - base_total) / base_total * 100,
        (cand.tokens - base.tokens) / base.tokens * 100,
        confidence,
    )
    p95_base = float(np.quantile(np.concatenate([s[2] for s in sides]), 0.95))
    p95_cand = float(np.quantile(np.concatenate([s[3] for s in sides]), 0.95))
    latency_p95 = _interval(p95_cand, cand.p95, confidence)
    # informational; undefined (None) when a baseline P95 of 0 occurs
    latency_delta = (
        _interval(
            (p95_cand - p95_base) / p95_base * 100,
            (cand.p95 - base.p95) / base.p95 * 100,
            confidence,
        )
        if p95_base > 0 and bool(np.all(base.p95 > 0))
        else None
    )
    findings = [
        f
        for f in (
            _grade("token delta", "%", token_delta, thresholds.token_warn, thresholds.token_block),
            _grade(
                "P95 latency", " ms", latency_p95, thresholds.latency_warn, thresholds.latency_block
            ),
        )
        if f is not None
    ]
    for level, limit in (
        ("block", thresholds.block_error_rate),
        ("warn", thresholds.max_error_rate),
    ):
        if error_rate > limit:
            message = f"candidate error rate {error_rate:.1%} exceeds the {level} limit {limit:.1%}"
            findings.append(Finding(level, "error rate", message))
            break
    status = max((f.level for f in findings), key=_RANK.__getitem__, default="pass")
    return BudgetAnalysis(
        status=status,
        findings=tuple(findings),
        token_delta=token_delta,
        latency_p95=latency_p95,
        baseline_latency_p95=round(p95_base, 3),
        latency_delta=latency_delta,
        **base_args,
    )


def analyze_budget_metrics(
    report_file: str | os.PathLike[str],
    token_warn: float = 12.0,
    token_block: float = 25.0,
    latency_warn: float | None = None,
    latency_block: float | None = None,
    *,
    max_error_rate: float = 0.05,
    block_error_rate: float = 0.20,
    confidence: float = 0.95,
    n_bootstrap: int = 2000,
    seed: int = 0,
) -> BudgetAnalysis:
    """Analyse a report file. A missing or malformed report gives status ``error``, not a raise.

    Thresholds: token deltas in percent of the baseline; latencies in milliseconds of candidate
    P95. Bad threshold arguments raise :class:`fusion_ops.errors.InvalidInputError`.
    """
    if not isinstance(report_file, (str, os.PathLike)):
        raise InvalidInputError(
            f"report_file must be a path, got {type(report_file).__name__} {_validate.show(report_file)}"
        )
    thresholds = Thresholds(
        token_warn, token_block, latency_warn, latency_block, max_error_rate, block_error_rate
    )
    try:
        report = load_report(report_file)
    except ReportError as exc:
        return BudgetAnalysis(
            status="error",
            thresholds=thresholds,
            confidence=confidence,
            n_bootstrap=n_bootstrap,
            findings=(Finding("error", "report", str(exc)),),
        )
    return analyze_report(
        report, thresholds, confidence=confidence, n_bootstrap=n_bootstrap, seed=seed
    )


# ---------------------------------------------------------------------------------- rendering
def _fmt(value: float | None, unit: str = "", signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:+.2f}{unit}" if signed else f"{value:.2f}{unit}"


def _percent(fraction: float | None) -> float | None:
    return None if fraction is None else fraction * 100


def _ci(ci: Interval | None, unit: str = "") -> str:
    return "n/a" if ci is None else f"[{ci.low:.2f}, {ci.high:.2f}]{unit}"


def _limits(warn: float | None, block: float | None, unit: str) -> str:
    def one(v: float | None) -> str:
        return "-" if v is None else f"{v:g}{unit}"

    return f"{one(warn)} / {one(block)}"


def _rows(a: BudgetAnalysis) -> list[tuple[str, str, str, str, str]]:
    t = a.thresholds
    level = round(a.confidence * 100)
    return [
        (
            "token delta",
            _fmt(a.token_delta.estimate if a.token_delta else None, "%", signed=True),
            _ci(a.token_delta, "%"),
            _limits(t.token_warn, t.token_block, "%"),
            f"{2 * level - 100}% interval; low end = one-sided {level}% bound",
        ),
        (
            "P95 latency (candidate)",
            _fmt(a.latency_p95.estimate if a.latency_p95 else None, " ms"),
            _ci(a.latency_p95, " ms"),
            _limits(t.latency_warn, t.latency_block, " ms"),
            f"baseline {_fmt(a.baseline_latency_p95, ' ms')}",
        ),
        (
            "P95 latency delta",
            _fmt(a.latency_delta.estimate if a.latency_delta else None, "%", signed=True),
            _ci(a.latency_delta, "%"),
            "-",
            "informational",
        ),
        (
            "error rate (candidate)",
            _fmt(_percent(a.error_rate), "%"),
            "-",
            f"{t.max_error_rate * 100:g}% / {t.block_error_rate * 100:g}%",
            f"baseline {_fmt(_percent(a.baseline_error_rate), '%')}",
        ),
    ]


def render_text(a: BudgetAnalysis) -> str:
    lines = [f"fusion budget gate: {a.status.upper()} (exit {a.exit_code})", ""]
    header = ("metric", "value", "interval", "warn / block", "note")
    rows = [header, *_rows(a)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for row in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if a.findings:
        lines.append("")
        lines += [f"{f.level.upper()}: {f.message}" for f in a.findings]
    return "\n".join(lines)


def render_markdown(a: BudgetAnalysis) -> str:
    """A PR comment; the hidden marker lets the workflow edit its comment instead of adding one."""
    icon = {"pass": "✅", "warn": "⚠️", "block": "⛔", "error": "❗"}[a.status]
    out = [COMMENT_MARKER, f"## {icon} Fusion budget gate: **{a.status.upper()}**", ""]
    out += [
        "| metric | value | interval | warn / block | note |",
        "| --- | --- | --- | --- | --- |",
    ]
    out += [f"| {' | '.join(r)} |" for r in _rows(a)]
    if a.findings:
        out += ["", *[f"- **{f.level}** – {f.message}" for f in a.findings]]
    if a.scenarios:
        worst = sorted(a.scenarios, key=lambda s: -abs(s.token_delta_pct or 0.0))[:15]
        out += [
            "",
            f"<details><summary>Per-scenario token means (top {len(worst)} of "
            f"{len(a.scenarios)} by |delta|)</summary>",
            "",
            "| scenario | candidate overlay | baseline | candidate | delta | ok (base / cand) |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        out += [
            f"| {s.id} | {s.candidate_overlay or '-'} | {s.baseline_mean_tokens:.1f} | "
            f"{s.candidate_mean_tokens:.1f} | {_fmt(s.token_delta_pct, '%', signed=True)} | "
            f"{s.baseline_ok}/{s.baseline_total} / {s.candidate_ok}/{s.candidate_total} |"
            for s in worst
        ]
        out += ["", "</details>"]
    meta = a.metadata
    if meta:
        base, cand = meta.get("baseline", {}), meta.get("candidate", {})
        out += [
            "",
            f"<sub>model `{meta.get('model')}`, tokenizer `{meta.get('tokenizer')}`, "
            f"{meta.get('runs_per_side')} runs per side; baseline `{base.get('prompt_strategy')}` "
            f"@ `{(base.get('git_sha') or '-')[:12]}` "
            f"config `{str(base.get('config_hash'))[:12]}`; "
            f"candidate `{cand.get('prompt_strategy')}` @ `{(cand.get('git_sha') or '-')[:12]}` "
            f"config `{str(cand.get('config_hash'))[:12]}`; {a.n_bootstrap} bootstrap "
            f"replicates; P95 = linear interpolation (type 7).</sub>",
        ]
    return "\n".join(out) + "\n"


def github_outputs(a: BudgetAnalysis) -> dict[str, str]:
    """The ``$GITHUB_OUTPUT`` keys, exactly :data:`GITHUB_OUTPUT_KEYS`."""

    def num(v: float | None) -> str:
        return "" if v is None else f"{v:.4f}"

    td, lp, ld = a.token_delta, a.latency_p95, a.latency_delta
    values = {
        "budget_status": a.status,
        "exit_code": str(a.exit_code),
        "token_delta": num(td.estimate if td else None),
        "token_delta_low": num(td.low if td else None),
        "token_delta_high": num(td.high if td else None),
        "latency_p95": num(lp.estimate if lp else None),
        "latency_p95_low": num(lp.low if lp else None),
        "latency_p95_high": num(lp.high if lp else None),
        "latency_delta": num(ld.estimate if ld else None),
        "error_rate": num(a.error_rate),
    }
    assert tuple(values) == GITHUB_OUTPUT_KEYS
    return values


def _escape_annotation(message: str) -> str:
    return message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def render_github(a: BudgetAnalysis, env: dict[str, str] | None = None) -> str:
    """Write ``$GITHUB_OUTPUT`` / ``$GITHUB_STEP_SUMMARY``; return the annotation lines."""
    env = dict(os.environ) if env is None else env
    output_path = env.get("GITHUB_OUTPUT")
    if output_path:
        with open(output_path, "a", encoding="utf-8") as out:
            for key, value in github_outputs(a).items():
                out.write(f"{key}={value}\n")
    summary_path = env.get("GITHUB_STEP_SUMMARY")
    if summary_path:
        with open(summary_path, "a", encoding="utf-8") as out:
            out.write(render_markdown(a))
    lines = []
    for finding in a.findings:
        kind = "warning" if finding.level == "warn" else "error"
        lines.append(
            f"::{kind} title=Fusion budget {finding.metric}::{_escape_annotation(finding.message)}"
        )
    lines.append(f"fusion budget gate: {a.status}")
    return "\n".join(lines)


def render(a: BudgetAnalysis, output_format: str) -> str:
    if output_format == "json":
        return json.dumps(a.to_dict(), indent=2, allow_nan=False, default=str)
    if output_format == "markdown":
        return render_markdown(a)
    if output_format == "github":
        return render_github(a)
    return render_text(a)


# ---------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--report-file", required=True, help="budget report JSON (see the schema)")
    parser.add_argument("--token-warn-threshold", type=float, default=12.0, help="percent")
    parser.add_argument("--token-block-threshold", type=float, default=25.0, help="percent")
    parser.add_argument("--latency-warn-threshold", type=float, default=None, help="P95 ms")
    parser.add_argument("--latency-block-threshold", type=float, default=None, help="P95 ms")
    parser.add_argument("--max-error-rate", type=float, default=0.05, help="fraction (warn)")
    parser.add_argument(
        "--block-error-rate", type=float, default=0.20, help="fraction of failed runs (block)"
    )
    parser.add_argument("--confidence", type=float, default=0.95, help="one-sided bound level")
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap replicates")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument(
        "--output-format", choices=("text", "json", "markdown", "github"), default="text"
    )
    parser.add_argument(
        "--comment-file", help="also write the markdown PR comment to this file (any format)"
    )


def run(args: argparse.Namespace) -> int:
    """Analyse and print; errors propagate to :func:`fusion_ops.cli_support.guarded_main`."""
    analysis = analyze_budget_metrics(
        args.report_file,
        args.token_warn_threshold,
        args.token_block_threshold,
        args.latency_warn_threshold,
        args.latency_block_threshold,
        max_error_rate=args.max_error_rate,
        block_error_rate=args.block_error_rate,
        confidence=args.confidence,
        n_bootstrap=args.bootstrap,
        seed=args.seed,
    )
    if args.comment_file:
        Path(args.comment_file).write_text(render_markdown(analysis), encoding="utf-8")
    print(render(analysis, args.output_format))
    return analysis.exit_code


@guarded_main
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fusion_ops.budget_analysis",
        description="Compare a candidate's token and latency budget against its baseline.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
