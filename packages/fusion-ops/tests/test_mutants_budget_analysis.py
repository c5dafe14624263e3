"""Tests that kill budget_analysis' surviving mutants (tools/mutate.py fusion-ops --module budget_analysis).

The interval's ends must be the α and 1 − α quantiles of the bootstrap (α = 1 − confidence), so
its lower end is a one-sided bound at ``confidence``. A coverage simulation cannot tell α from
α / 2 (a one-sided 95 % bound silently turned into a 97.5 % one) at a testable cost; a bootstrap
whose distribution is known exactly can. With a constant baseline of 100 tokens and a candidate
of five runs at 100 and five at 200, a replicate's delta is 10·K % with K ~ Binomial(10, 1/2):
P(K ≤ 2) = 5.5 %, P(K ≤ 3) = 17.2 %, P(K ≤ 4) = 37.7 %, P(K ≤ 5) = 62.3 %, P(K ≤ 6) = 82.8 %,
P(K ≤ 7) = 94.5 %. Each expected quantile sits at least 2.8 points of probability inside its
step, over ten standard errors of the empirical CDF at 20 000 replicates, whatever the seed.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import re
from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path

import pytest

from fusion_ops.budget_analysis import (
    COMMENT_MARKER,
    GITHUB_OUTPUT_KEYS,
    BudgetAnalysis,
    Finding,
    Interval,
    ScenarioSummary,
    Thresholds,
    add_arguments,
    analyze_budget_metrics,
    analyze_report,
    github_outputs,
    main,
    render,
    render_github,
    render_markdown,
    render_text,
)
from fusion_ops.errors import InvalidInputError
from fusion_ops.report import BudgetReport, Sample, load_report

BINOMIAL_ROWS = [([100] * 10, [100] * 5 + [200] * 5)]


@pytest.mark.parametrize(
    ("confidence", "low", "high"),
    [(0.8, 40.0, 60.0), (0.9, 30.0, 70.0)],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_interval_ends_are_the_alpha_quantiles_of_the_bootstrap(
    make_report: Callable[..., BudgetReport],
    confidence: float,
    low: float,
    high: float,
    seed: int,
) -> None:
    analysis = analyze_report(
        make_report(BINOMIAL_ROWS), confidence=confidence, n_bootstrap=20_000, seed=seed
    )
    delta = analysis.token_delta
    assert delta is not None
    assert (delta.estimate, delta.low, delta.high) == (50.0, low, high)


# ------------------------------------------------------------------------------- rendering
# The reports a reviewer and the workflow read, built from hand-made analyses whose every number
# is chosen so the expected text can be written down from the inputs: a format that drifts (a
# unit, a sign, a threshold shown as the wrong one, a scenario left out) fails here.
T = Thresholds(
    token_warn=10.0,
    token_block=30.0,
    latency_warn=800.0,
    latency_block=None,
    max_error_rate=0.05,
    block_error_rate=0.25,
)


def _scenario(i: int, delta: float | None, overlay: str | None) -> ScenarioSummary:
    return ScenarioSummary(
        id=f"s{i}",
        baseline_mean_tokens=100.0 + i,
        candidate_mean_tokens=200.25 + i,
        token_delta_pct=delta,
        baseline_ok=8,
        baseline_total=8,
        candidate_ok=7,
        candidate_total=9,
        candidate_overlay=overlay,
    )


# 16 scenarios, one more than the comment lists: s0 has no delta (ranks as 0), s1 0.5 %,
# s2 -40 % (largest |delta|), s3..s15 1..13 %.
SCENARIOS = (
    _scenario(0, None, "terse"),
    _scenario(1, 0.5, None),
    _scenario(2, -40.0, "concise"),
    *(_scenario(i, float(i - 2), "plain") for i in range(3, 16)),
)
META = {
    "model": "tiny",
    "tokenizer": "tok",
    "runs_per_side": 8,
    "baseline": {
        "prompt_strategy": "plain",
        "git_sha": "0123456789abcdef",
        "config_hash": "fedcba9876543210",
    },
    "candidate": {
        "prompt_strategy": "fused",
        "git_sha": "abcdefabcdef12345",
        "config_hash": "aaaaaaaaaaaaaaaaZZ",
    },
}
BLOCKED = BudgetAnalysis(
    status="block",
    thresholds=T,
    confidence=0.9,
    n_bootstrap=500,
    findings=(
        Finding("warn", "token delta", "token delta up 12% over 10%"),
        Finding("block", "error rate", "50% of runs\r\nfailed"),
    ),
    token_delta=Interval(12.3456, 10.5, 14.25),
    latency_p95=Interval(812.5, 790.0, 830.25),
    baseline_latency_p95=700.0,
    latency_delta=Interval(16.0714, -2.0, 30.0),
    baseline_error_rate=0.0,
    error_rate=0.0625,
    scenarios=SCENARIOS,
    metadata=META,
)
# what an unreadable report gives: nothing measured, default thresholds
EMPTY = BudgetAnalysis(
    status="error",
    thresholds=Thresholds(),
    confidence=0.95,
    n_bootstrap=2000,
    findings=(Finding("error", "report", "the report holds no samples"),),
)
TABLE_HEAD = [
    "| metric | value | interval | warn / block | note |",
    "| --- | --- | --- | --- | --- |",
]


def test_text_report_lists_every_metric_with_units_interval_and_limits() -> None:
    assert render_text(BLOCKED).splitlines() == [
        "fusion budget gate: BLOCK (exit 1)",
        "",
        "metric                   value      interval             warn / block  note",
        "token delta              +12.35%    [10.50, 14.25]%      10% / 30%     "
        "80% interval; low end = one-sided 90% bound",
        "P95 latency (candidate)  812.50 ms  [790.00, 830.25] ms  800 ms / -    baseline 700.00 ms",
        "P95 latency delta        +16.07%    [-2.00, 30.00]%      -             informational",
        "error rate (candidate)   6.25%      -                    5% / 25%      baseline 0.00%",
        "",
        "WARN: token delta up 12% over 10%",
        "BLOCK: 50% of runs",  # splitlines splits the finding's own \r\n
        "failed",
    ]
    assert render(BLOCKED, "text") == render_text(BLOCKED)


def test_text_report_of_nothing_measured_says_n_a() -> None:
    assert render_text(EMPTY).splitlines() == [
        "fusion budget gate: ERROR (exit 2)",
        "",
        "metric                   value  interval  warn / block  note",
        "token delta              n/a    n/a       12% / 25%     "
        "90% interval; low end = one-sided 95% bound",
        "P95 latency (candidate)  n/a    n/a       - / -         baseline n/a",
        "P95 latency delta        n/a    n/a       -             informational",
        "error rate (candidate)   n/a    -         5% / 20%      baseline n/a",
        "",
        "ERROR: the report holds no samples",
    ]


def test_markdown_comment_lists_metrics_findings_worst_scenarios_and_provenance() -> None:
    text = render_markdown(BLOCKED)
    assert text.endswith("</sub>\n")
    lines = text.splitlines()
    assert lines[:11] == [
        COMMENT_MARKER,
        "## ⛔ Fusion budget gate: **BLOCK**",
        "",
        *TABLE_HEAD,
        "| token delta | +12.35% | [10.50, 14.25]% | 10% / 30% | "
        "80% interval; low end = one-sided 90% bound |",
        "| P95 latency (candidate) | 812.50 ms | [790.00, 830.25] ms | 800 ms / - | "
        "baseline 700.00 ms |",
        "| P95 latency delta | +16.07% | [-2.00, 30.00]% | - | informational |",
        "| error rate (candidate) | 6.25% | - | 5% / 25% | baseline 0.00% |",
        "",
        "- **warn** – token delta up 12% over 10%",
    ]
    assert lines[11:17] == [
        "- **block** – 50% of runs",  # splitlines splits the finding's own \r\n
        "failed",
        "",
        "<details><summary>Per-scenario token means (top 15 of 16 by |delta|)</summary>",
        "",
        "| scenario | candidate overlay | baseline | candidate | delta | ok (base / cand) |",
    ]
    rows = lines[18:33]
    # worst first by |delta|; the one without a delta ranks as 0 and falls off the top 15
    assert [r.split(" | ")[0] for r in rows] == [
        "| s2",
        *[f"| s{i}" for i in range(15, 2, -1)],
        "| s1",
    ]
    assert rows[0] == "| s2 | concise | 102.0 | 202.2 | -40.00% | 8/8 / 7/9 |"
    assert rows[-1] == "| s1 | - | 101.0 | 201.2 | +0.50% | 8/8 / 7/9 |"
    assert lines[17] == "| --- | --- | --- | --- | --- | --- |"
    assert lines[33:] == [
        "",
        "</details>",
        "",
        "<sub>model `tiny`, tokenizer `tok`, 8 runs per side; baseline `plain` @ `0123456789ab` "
        "config `fedcba987654`; candidate `fused` @ `abcdefabcdef` config `aaaaaaaaaaaa`; 500 bootstrap "
        "replicates; P95 = linear interpolation (type 7).</sub>",
    ]
    assert render(BLOCKED, "markdown") == text


def test_markdown_comment_of_nothing_measured_and_without_provenance() -> None:
    assert render_markdown(EMPTY) == "\n".join(
        [
            COMMENT_MARKER,
            "## ❗ Fusion budget gate: **ERROR**",
            "",
            *TABLE_HEAD,
            "| token delta | n/a | n/a | 12% / 25% | 90% interval; low end = one-sided 95% bound |",
            "| P95 latency (candidate) | n/a | n/a | - / - | baseline n/a |",
            "| P95 latency delta | n/a | n/a | - | informational |",
            "| error rate (candidate) | n/a | - | 5% / 20% | baseline n/a |",
            "",
            "- **error** – the report holds no samples",
            "",
        ]
    )
    # provenance the report does not record shows as None / '-', never a crash
    partial = replace(EMPTY, metadata={"model": "m"})
    assert render_markdown(partial).splitlines()[-1] == (
        "<sub>model `m`, tokenizer `None`, None runs per side; baseline `None` @ `-` config "
        "`None`; candidate `None` @ `-` config `None`; 2000 bootstrap replicates; P95 = linear "
        "interpolation (type 7).</sub>"
    )


@pytest.mark.parametrize(
    ("status", "heading"),
    [
        ("pass", "## ✅ Fusion budget gate: **PASS**"),
        ("warn", "## ⚠️ Fusion budget gate: **WARN**"),
    ],
)
def test_markdown_heading_names_the_status(status: str, heading: str) -> None:
    lines = render_markdown(replace(EMPTY, status=status, findings=())).splitlines()
    assert lines[1] == heading
    assert lines[-1] == "| error rate (candidate) | n/a | - | 5% / 20% | baseline n/a |"


def test_github_outputs_carry_four_decimals_or_empty() -> None:
    assert github_outputs(BLOCKED) == {
        "budget_status": "block",
        "exit_code": "1",
        "token_delta": "12.3456",
        "token_delta_low": "10.5000",
        "token_delta_high": "14.2500",
        "latency_p95": "812.5000",
        "latency_p95_low": "790.0000",
        "latency_p95_high": "830.2500",
        "latency_delta": "16.0714",
        "error_rate": "0.0625",
    }
    assert github_outputs(EMPTY) == dict.fromkeys(GITHUB_OUTPUT_KEYS, "") | {
        "budget_status": "error",
        "exit_code": "2",
    }


def test_github_format_appends_outputs_and_summary_and_escapes_annotations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, summary = tmp_path / "out", tmp_path / "summary"
    out.write_text("earlier=1\n", encoding="utf-8")
    summary.write_text("earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    annotations = render(BLOCKED, "github")
    assert annotations.splitlines() == [
        "::warning title=Fusion budget token delta::token delta up 12%25 over 10%25",
        "::error title=Fusion budget error rate::50%25 of runs%0D%0Afailed",
        "fusion budget gate: block",
    ]
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "earlier=1"
    assert dict(line.split("=", 1) for line in lines[1:]) == github_outputs(BLOCKED)
    assert summary.read_bytes().decode("utf-8") == "earlier step\n" + render_markdown(BLOCKED)
    # an explicit environment wins over the process's; without the variables nothing is written
    assert (
        render_github(EMPTY, {})
        == "::error title=Fusion budget report::the report holds no samples\nfusion budget gate: error"
    )
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1 + len(GITHUB_OUTPUT_KEYS)


def test_json_format_is_indented_strict_and_complete() -> None:
    text = render(BLOCKED, "json")
    assert text.startswith('{\n  "status": "block",\n  "thresholds": {\n    "token_warn": 10.0,')
    data = json.loads(text)
    assert (data["exit_code"], data["success_rate"]) == (1, 0.9375)
    assert data["quantile_definition"] == "numpy linear (Hyndman-Fan type 7)"
    assert data["token_delta"] == {"estimate": 12.3456, "low": 10.5, "high": 14.25}
    assert EMPTY.to_dict()["success_rate"] is None
    # metadata that JSON cannot hold natively is shown as text; a NaN is refused, not printed
    assert json.loads(render(replace(EMPTY, metadata={"file": Path("a/b")}), "json"))[
        "metadata"
    ] == {"file": str(Path("a/b"))}
    with pytest.raises(ValueError, match="not JSON compliant"):
        render(replace(EMPTY, error_rate=math.nan), "json")


# ------------------------------------------------------------------------------- CLI
def _noisy_report_file(tmp_path: Path, make_report: Callable[..., BudgetReport]) -> Path:
    base = [1000, 1080, 950, 1010, 990, 1100]
    report = make_report(
        [(base, [t * 1.15 for t in base])],
        latency=([400.0, 520, 610, 450, 480, 700], [500.0, 650, 720, 560, 610, 900]),
    )
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report.to_json()), encoding="utf-8")
    return path


def test_every_cli_option_reaches_the_analysis(
    tmp_path: Path,
    make_report: Callable[..., BudgetReport],
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _noisy_report_file(tmp_path, make_report)
    comment = tmp_path / "comment.md"
    argv = [
        "--report-file", str(path),
        "--token-warn-threshold", "5",
        "--token-block-threshold", "40",
        "--latency-warn-threshold", "600",
        "--latency-block-threshold", "2000",
        "--max-error-rate", "0.1",
        "--block-error-rate", "0.3",
        "--confidence", "0.9",
        "--bootstrap", "300",
        "--seed", "7",
        "--output-format", "json",
        "--comment-file", str(comment),
    ]  # fmt: skip
    code = main(argv)
    expected = analyze_budget_metrics(
        path, 5.0, 40.0, 600.0, 2000.0, max_error_rate=0.1, block_error_rate=0.3,
        confidence=0.9, n_bootstrap=300, seed=7,
    )  # fmt: skip
    assert code == expected.exit_code
    assert json.loads(capsys.readouterr().out) == json.loads(render(expected, "json"))
    assert comment.read_text(encoding="utf-8") == render_markdown(expected)
    # the seed is used: another one moves the interval
    other = analyze_budget_metrics(path, 5.0, 40.0, confidence=0.9, n_bootstrap=300, seed=8)
    assert other.token_delta != expected.token_delta


def test_cli_defaults_are_the_library_defaults(
    tmp_path: Path,
    make_report: Callable[..., BudgetReport],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """CLI, file API and in-memory API must agree on the thresholds and bootstrap settings."""
    path = _noisy_report_file(tmp_path, make_report)
    signature = inspect.signature(analyze_budget_metrics).parameters
    file_defaults = {name: p.default for name, p in signature.items() if name != "report_file"}
    thresholds = {f.name: f.default for f in fields(Thresholds)}
    assert file_defaults == thresholds | {"confidence": 0.95, "n_bootstrap": 2000, "seed": 0}
    in_memory = inspect.signature(analyze_report).parameters
    assert {k: in_memory[k].default for k in ("confidence", "n_bootstrap", "seed")} == {
        "confidence": 0.95,
        "n_bootstrap": 2000,
        "seed": 0,
    }
    assert main(["--report-file", str(path)]) == analyze_budget_metrics(path).exit_code
    assert capsys.readouterr().out == render_text(analyze_budget_metrics(path)) + "\n"


def test_cli_requires_a_report_file_and_documents_each_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as usage:
        main([])
    assert usage.value.code == 2
    assert "the following arguments are required: --report-file" in capsys.readouterr().err
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    helps = {a.option_strings[0]: a.help for a in parser._actions if a.option_strings}
    assert helps == {
        "-h": "show this help message and exit",
        "--report-file": "budget report JSON (see the schema)",
        "--token-warn-threshold": "percent",
        "--token-block-threshold": "percent",
        "--latency-warn-threshold": "P95 ms",
        "--latency-block-threshold": "P95 ms",
        "--max-error-rate": "fraction (warn)",
        "--block-error-rate": "fraction of failed runs (block)",
        "--confidence": "one-sided bound level",
        "--bootstrap": "bootstrap replicates",
        "--seed": "bootstrap seed",
        "--output-format": None,
        "--comment-file": "also write the markdown PR comment to this file (any format)",
    }


def test_a_report_file_that_is_not_a_path_is_named_with_its_type_and_value() -> None:
    with pytest.raises(InvalidInputError, match=r"^report_file must be a path, got int 123$"):
        analyze_budget_metrics(123)  # type: ignore[arg-type]


def test_the_file_api_analyses_exactly_as_the_in_memory_one(
    tmp_path: Path, make_report: Callable[..., BudgetReport]
) -> None:
    path = _noisy_report_file(tmp_path, make_report)
    thresholds = Thresholds(5.0, 40.0, 600.0, 2000.0, 0.1, 0.3)
    from_file = analyze_budget_metrics(
        path, 5.0, 40.0, 600.0, 2000.0, max_error_rate=0.1, block_error_rate=0.3,
        confidence=0.9, n_bootstrap=300, seed=7,
    )  # fmt: skip
    in_memory = analyze_report(
        load_report(path), thresholds, confidence=0.9, n_bootstrap=300, seed=7
    )
    assert from_file == in_memory


def test_an_unreadable_report_is_one_report_error_with_the_settings_kept(tmp_path: Path) -> None:
    analysis = analyze_budget_metrics(tmp_path / "nope.json", confidence=0.9, n_bootstrap=300)
    assert (analysis.status, analysis.confidence, analysis.n_bootstrap) == ("error", 0.9, 300)
    assert [(f.level, f.metric) for f in analysis.findings] == [("error", "report")]
    assert "nope.json" in analysis.findings[0].message


# ------------------------------------------------------------------------------- grading
# Constant runs make every bootstrap replicate, hence both interval ends, equal the estimate:
# a lower bound exactly at a threshold does not clear it ("exceeds" is strict).
def _constant(
    make_report: Callable[..., BudgetReport], tokens: int, latency: float
) -> BudgetReport:
    return make_report([([100] * 6, [tokens] * 6)], latency=([500.0] * 6, [latency] * 6))


def test_a_lower_bound_at_the_threshold_does_not_breach_it(
    make_report: Callable[..., BudgetReport],
) -> None:
    at_warn = analyze_report(_constant(make_report, 112, 600.0), Thresholds(latency_warn=600.0))
    assert at_warn.token_delta == Interval(12.0, 12.0, 12.0)
    assert (at_warn.status, at_warn.findings) == ("pass", ())
    at_block = analyze_report(
        _constant(make_report, 125, 900.0), Thresholds(latency_warn=600.0, latency_block=900.0)
    )
    assert at_block.status == "warn"
    assert at_block.findings == (
        Finding(
            "warn",
            "token delta",
            "token delta +25.00% (lower bound 25.00%) exceeds the warn threshold 12%",
        ),
        Finding(
            "warn",
            "P95 latency",
            "P95 latency 900.00 ms (lower bound 900.00 ms) exceeds the warn threshold 600 ms",
        ),
    )


def test_markdown_shows_a_latency_block_limit() -> None:
    limits = replace(EMPTY, thresholds=Thresholds(latency_warn=500.0, latency_block=900.0))
    assert "| P95 latency (candidate) | n/a | n/a | 500 ms / 900 ms | baseline n/a |" in (
        render_markdown(limits).splitlines()
    )


@pytest.mark.parametrize("fmt", ["text", "json", "markdown", "github"])
def test_cli_prints_each_output_format(
    fmt: str,
    tmp_path: Path,
    make_report: Callable[..., BudgetReport],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    path = _noisy_report_file(tmp_path, make_report)
    main(["--report-file", str(path), "--output-format", fmt])
    assert capsys.readouterr().out == render(analyze_budget_metrics(path), fmt) + "\n"


def test_cli_refuses_an_unknown_output_format(
    tmp_path: Path, make_report: Callable[..., BudgetReport], capsys: pytest.CaptureFixture[str]
) -> None:
    path = _noisy_report_file(tmp_path, make_report)
    with pytest.raises(SystemExit) as usage:
        main(["--report-file", str(path), "--output-format", "yaml"])
    assert usage.value.code == 2
    assert "invalid choice: 'yaml'" in capsys.readouterr().err


# ------------------------------------------------------------------------------- settings
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"thresholds": {"token_warn": 1.0}}, "thresholds must be Thresholds, got dict"),
        ({"confidence": 0.49}, "confidence must be >= 0.5, got 0.49"),
        ({"n_bootstrap": 99}, "n_bootstrap must be >= 100, got 99"),
        ({"n_bootstrap": 100_001}, "n_bootstrap must be <= 100000, got 100001"),
        ({"seed": -1}, "seed must be >= 0, got -1"),
        ({"seed": 1.0}, "seed must be an integer, got float 1.0"),
        ({"chunk_elements": 0}, "chunk_elements must be >= 1, got 0"),
    ],
)
def test_each_bad_setting_is_refused_by_name(
    make_report: Callable[..., BudgetReport], kwargs: dict[str, object], message: str
) -> None:
    report = make_report([([100, 110], [100, 110])])
    with pytest.raises(InvalidInputError, match=f"^{re.escape(message)}$"):
        analyze_report(report, **kwargs)  # type: ignore[arg-type]


def test_the_smallest_settings_allowed_are_accepted(
    make_report: Callable[..., BudgetReport],
) -> None:
    # exactly MIN_SAMPLES (2) runs per side, 100 replicates, seed 0, one run per chunk
    report = make_report([([100, 110], [100, 110])])
    analysis = analyze_report(report, confidence=0.5, n_bootstrap=100, seed=0, chunk_elements=1)
    assert (analysis.status, analysis.n_bootstrap) == ("pass", 100)


def test_every_scenario_short_of_runs_or_with_bad_numbers_is_named(
    make_report: Callable[..., BudgetReport],
) -> None:
    """Each problem is reported, not only the first: the review sees every scenario to fix."""
    two = [100, 110]
    report = make_report([([100], two), (two, two), (two, [100]), (two, two)])
    s1 = report.scenarios[1]
    bad = replace(s1.candidate[0], latency_ms=math.nan)
    s1 = replace(s1, candidate=(bad, s1.candidate[1]))
    report = replace(report, scenarios=(report.scenarios[0], s1, *report.scenarios[2:]))
    analysis = analyze_report(report)
    needed = "successful samples; at least 2 per side are needed"
    bad_numbers = "has a token count or latency that is not a finite number >= 0"
    assert analysis.findings == (
        Finding("error", "samples", f"scenario 's0' has 1 baseline and 2 candidate {needed}"),
        Finding("error", "samples", f"scenario 's1' {bad_numbers}"),
        Finding("error", "samples", f"scenario 's2' has 2 baseline and 1 candidate {needed}"),
    )
    assert [s.id for s in analysis.scenarios] == ["s3"]


def test_error_rates_count_every_run_of_every_scenario(
    make_report: Callable[..., BudgetReport],
) -> None:
    ok = make_report([([100] * 4, [100] * 4), ([100] * 6, [100] * 2)])
    failed = Sample(ok=False, error="timeout")
    first, second = ok.scenarios
    report = BudgetReport(
        metadata=ok.metadata,
        scenarios=(
            replace(
                first, baseline=(*first.baseline, failed), candidate=(*first.candidate, failed)
            ),
            replace(second, candidate=(*second.candidate, failed, failed)),
        ),
    )
    analysis = analyze_report(report)
    # baseline: 1 failed of 4 + 1 + 6 runs; candidate: 3 failed of 4 + 1 + 2 + 2 runs
    assert analysis.baseline_error_rate == round(1 / 11, 6)
    assert analysis.error_rate == round(3 / 9, 6)


def test_each_scenario_is_summarised_from_its_own_runs(
    make_report: Callable[..., BudgetReport],
) -> None:
    ok = make_report([([100, 200], [150, 250]), ([0, 0], [10, 30])])
    first, second = ok.scenarios
    failed = Sample(ok=False, error="timeout")
    report = replace(
        ok,
        scenarios=(
            replace(first, candidate=(*first.candidate, failed), candidate_overlay="concise"),
            second,
        ),
    )
    analysis = analyze_report(report)
    assert analysis.scenarios == (
        ScenarioSummary("s0", 150.0, 200.0, 33.3333, 2, 2, 2, 3, "concise"),
        # a scenario whose baseline costs nothing has no relative delta
        ScenarioSummary("s1", 0.0, 20.0, None, 2, 2, 2, 2, None),
    )


def test_scenario_means_keep_three_decimals(make_report: Callable[..., BudgetReport]) -> None:
    (summary,) = analyze_report(make_report([([100, 100, 101], [200, 200, 202])])).scenarios
    assert (summary.baseline_mean_tokens, summary.candidate_mean_tokens) == (100.333, 200.667)


NO_SAMPLES = Finding("error", "samples", "the report holds no samples")
ZERO_TOTAL = Finding("error", "token_delta", "baseline mean token total is 0")


def test_a_side_without_runs_or_a_free_baseline_is_one_exact_error(
    make_report: Callable[..., BudgetReport],
) -> None:
    two = make_report([([100, 110], [100, 110])])
    no_candidate = replace(two, scenarios=(replace(two.scenarios[0], candidate=()),))
    short = "scenario 's0' has 2 baseline and 0 candidate successful samples; at least 2 per side"
    assert analyze_report(no_candidate).findings == (
        Finding("error", "samples", short + " are needed"),
        NO_SAMPLES,
    )
    assert analyze_report(make_report([([0, 0], [5, 5])])).findings == (ZERO_TOTAL,)
    # a scenario already refused is the only finding, even when nothing else is left
    assert analyze_report(make_report([([0], [0, 0])])).findings == (
        Finding(
            "error",
            "samples",
            short.replace("2 baseline and 0", "1 baseline and 2") + " are needed",
        ),
    )
    # a baseline of one token per run is cheap, not free
    assert analyze_report(make_report([([1, 1], [1, 1])])).status == "pass"


def _latency_report(
    make_report: Callable[..., BudgetReport], base: list[float], cand: list[float]
) -> BudgetReport:
    return make_report([([100] * len(base), [100] * len(cand))], latency=(base, cand))


def test_the_latency_delta_is_relative_to_a_positive_baseline_p95(
    make_report: Callable[..., BudgetReport],
) -> None:
    steady = analyze_report(_latency_report(make_report, [500.0] * 4, [600.0] * 4))
    assert (steady.baseline_latency_p95, steady.latency_delta) == (
        500.0,
        Interval(20.0, 20.0, 20.0),
    )
    one_ms = analyze_report(_latency_report(make_report, [1.0] * 4, [2.0] * 4))
    assert one_ms.latency_delta == Interval(100.0, 100.0, 100.0)
    # some replicates draw only the zero-latency runs: the delta is undefined, not inf
    undefined = analyze_report(_latency_report(make_report, [0.0, 0.0, 0.0, 1000.0], [5.0] * 4))
    assert undefined.baseline_latency_p95 == 850.0
    assert undefined.latency_delta is None


def test_an_error_rate_at_its_limit_does_not_breach_it(
    make_report: Callable[..., BudgetReport],
) -> None:
    four = make_report([([100] * 4, [100] * 4)])
    (scenario,) = four.scenarios
    failed = Sample(ok=False, error="timeout")
    one_failed = replace(
        four, scenarios=(replace(scenario, candidate=(*scenario.candidate[:3], failed)),)
    )
    at_limit = analyze_report(one_failed, Thresholds(max_error_rate=0.25, block_error_rate=0.25))
    assert (at_limit.error_rate, at_limit.status) == (0.25, "pass")
    warned = analyze_report(one_failed, Thresholds(max_error_rate=0.2, block_error_rate=0.3))
    assert warned.findings == (
        Finding("warn", "error rate", "candidate error rate 25.0% exceeds the warn limit 20.0%"),
    )
    # block beats warn whatever the order of the findings
    costly = make_report([([100] * 4, [140] * 4)])
    (scenario,) = costly.scenarios
    both = replace(
        costly, scenarios=(replace(scenario, candidate=(*scenario.candidate[:3], failed)),)
    )
    mixed = analyze_report(both, Thresholds(block_error_rate=0.3))
    assert ([f.level for f in mixed.findings], mixed.status) == (["block", "warn"], "block")


def test_zero_token_replicates_are_one_exact_error(
    make_report: Callable[..., BudgetReport],
) -> None:
    analysis = analyze_report(make_report([([0, 0, 0, 10], [5, 5, 5, 5])]))
    (finding,) = analysis.findings
    assert (finding.level, finding.metric) == ("error", "token_delta")
    assert re.fullmatch(
        r"the baseline token total is 0 in \d+ of 2000 bootstrap replicates \(scenarios with "
        r"zero-token runs\), so the token delta is undefined",
        finding.message,
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"token_block": math.nan}, "token_block must be finite, got nan"),
        ({"token_warn": 0.0, "token_block": -1.0}, "token_block must be >= 0, got -1.0"),
        ({"max_error_rate": -0.1}, "max_error_rate must be >= 0, got -0.1"),
        ({"block_error_rate": 1.5}, "block_error_rate must be <= 1, got 1.5"),
    ],
)
def test_each_bad_threshold_is_refused_by_name(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(InvalidInputError, match=f"^{re.escape(message)}$"):
        Thresholds(**kwargs)


def test_thresholds_at_their_edges_are_accepted() -> None:
    Thresholds(token_warn=0.0, token_block=0.5)
    Thresholds(latency_warn=500.0, latency_block=500.0)
    Thresholds(max_error_rate=0.0, block_error_rate=1.0)


def test_the_baseline_p95_keeps_three_decimals(make_report: Callable[..., BudgetReport]) -> None:
    analysis = analyze_report(
        _latency_report(make_report, [100.0] * 3 + [100.1234567], [100.0] * 4)
    )
    assert analysis.baseline_latency_p95 == 100.105  # 100 + 0.85 * 0.1234567, type 7
