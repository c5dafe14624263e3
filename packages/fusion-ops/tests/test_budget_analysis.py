from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fusion_ops.budget_analysis import (
    COMMENT_MARKER,
    GITHUB_OUTPUT_KEYS,
    Thresholds,
    analyze_budget_metrics,
    analyze_report,
    main,
    render,
    render_github,
)
from fusion_ops.errors import InvalidInputError
from fusion_ops.report import BudgetReport, Sample, ScenarioSamples

Make = Callable[..., BudgetReport]


def _write(tmp_path: Path, report: BudgetReport) -> Path:
    path = tmp_path / "budget_report.json"
    path.write_text(json.dumps(report.to_json()))
    return path


def _shifted(make_report: Make, factor: float) -> BudgetReport:
    base = [1000, 1010, 990, 1005, 995]
    return make_report([(base, [t * factor for t in base]), (base, [t * factor for t in base])])


def test_identical_sides_pass(make_report: Make, tmp_path: Path) -> None:
    result = analyze_budget_metrics(_write(tmp_path, _shifted(make_report, 1.0)), 12.0, 25.0)
    assert result.status == "pass"
    assert result.exit_code == 0
    assert result.token_delta is not None
    assert result.token_delta.estimate == 0


def test_large_regression_blocks(make_report: Make, tmp_path: Path) -> None:
    result = analyze_budget_metrics(_write(tmp_path, _shifted(make_report, 1.40)), 12.0, 25.0)
    assert result.status == "block"
    assert result.exit_code == 1
    assert result.token_delta is not None
    assert result.token_delta.low > 25
    assert math.isclose(result.token_delta.estimate, 40, abs_tol=0.2)


def test_moderate_regression_warns(make_report: Make, tmp_path: Path) -> None:
    result = analyze_budget_metrics(_write(tmp_path, _shifted(make_report, 1.18)), 12.0, 25.0)
    assert result.status == "warn"
    assert result.exit_code == 0


def test_noise_alone_does_not_breach(make_report: Make) -> None:
    # a +30% point estimate whose interval reaches below the warn threshold: no verdict
    report = make_report([([100, 300, 100, 300], [100, 520, 100, 520])])
    result = analyze_report(report, Thresholds(12, 25))
    assert result.token_delta is not None
    assert result.token_delta.estimate > 25
    assert result.token_delta.low < 12
    assert result.status == "pass"


def test_latency_thresholds_use_the_p95_lower_bound(make_report: Make) -> None:
    tokens = [100] * 20
    slow = [1000.0 + 10 * i for i in range(20)]
    report = make_report([(tokens, tokens)], latency=(slow, [x * 6 for x in slow]))
    result = analyze_report(report, Thresholds(latency_warn=2000, latency_block=5000))
    assert result.status == "block"
    assert result.latency_p95 is not None
    # numpy linear quantile (type 7) of the pooled candidate latencies
    assert result.latency_p95.estimate == pytest.approx(6 * (1000 + 10 * 18.05))
    assert any(f.metric == "P95 latency" for f in result.findings)


def test_missing_samples_are_error_not_pass(make_report: Make) -> None:
    report = make_report([([100], [100]), ([100, 100], [100, 100])])
    result = analyze_report(report)
    assert result.status == "error"
    assert result.exit_code == 2
    assert "at least 2" in result.findings[0].message


def test_all_failed_candidate_is_error(make_report: Make) -> None:
    good = make_report([([100, 110, 120], [100, 110, 120])]).scenarios[0]
    failed = tuple(Sample(ok=False, error="timeout") for _ in range(3))
    report = BudgetReport(
        metadata=make_report([([1, 2], [1, 2])]).metadata,
        scenarios=(ScenarioSamples("s0", None, good.baseline, failed),),
    )
    assert analyze_report(report).status == "error"


def test_error_rate_above_limit_warns(make_report: Make) -> None:
    base = make_report([([100] * 10, [100] * 10)]).scenarios[0]
    candidate = base.candidate[:8] + tuple(Sample(ok=False, error="x") for _ in range(2))
    report = BudgetReport(
        metadata=make_report([([1, 2], [1, 2])]).metadata,
        scenarios=(ScenarioSamples("s0", None, base.baseline, candidate),),
    )
    result = analyze_report(report)
    assert result.error_rate == pytest.approx(0.2)
    assert result.success_rate == pytest.approx(0.8)
    assert result.status == "warn"


def test_zero_baseline_tokens_is_error(make_report: Make) -> None:
    assert analyze_report(make_report([([0, 0], [5, 5])])).status == "error"


@pytest.mark.parametrize("content", ["", "{}", "[1]", "not json"])
def test_malformed_report_file_is_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "r.json"
    path.write_text(content)
    result = analyze_budget_metrics(path)
    assert result.status == "error"
    assert result.exit_code == 2


def test_missing_report_file_is_error(tmp_path: Path) -> None:
    assert analyze_budget_metrics(tmp_path / "nope.json").status == "error"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"token_warn": float("nan")}, "token_warn must be finite"),
        ({"token_warn": True}, "token_warn must be a number"),
        ({"token_warn": 30.0, "token_block": 25.0}, "must not exceed token_block"),
        ({"token_block": -1.0, "token_warn": -2.0}, "token_warn must be >= 0"),
        ({"latency_warn": 0.0}, "latency_warn must be > 0"),
        ({"latency_warn": 6000.0, "latency_block": 5000.0}, "must not exceed latency_block"),
        ({"latency_block": float("inf")}, "latency_block must be finite"),
        ({"max_error_rate": 1.5}, "max_error_rate must be <= 1"),
    ],
)
def test_bad_thresholds_raise(tmp_path: Path, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        analyze_budget_metrics(tmp_path / "r.json", **kwargs)


def test_report_file_must_be_a_path() -> None:
    with pytest.raises(InvalidInputError, match="report_file must be a path"):
        analyze_budget_metrics(None)  # type: ignore[arg-type]


def test_bad_bootstrap_settings_raise(make_report: Make) -> None:
    report = _shifted(make_report, 1.0)
    with pytest.raises(InvalidInputError, match="n_bootstrap"):
        analyze_report(report, n_bootstrap=10)
    with pytest.raises(InvalidInputError, match="confidence"):
        analyze_report(report, confidence=1.0)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    factor=st.floats(min_value=0.5, max_value=2.0),
    base=st.lists(st.integers(min_value=50, max_value=5000), min_size=3, max_size=8),
)
def test_delta_estimate_matches_the_scaling_and_lies_in_its_interval(
    make_report: Make, factor: float, base: list[int]
) -> None:
    report = make_report([(base, [round(t * factor) for t in base])])
    result = analyze_report(report, Thresholds(1e6, 1e6), n_bootstrap=200)
    assert result.token_delta is not None
    expected = (sum(round(t * factor) for t in base) - sum(base)) / sum(base) * 100
    assert result.token_delta.estimate == pytest.approx(expected, abs=1e-3)
    assert result.token_delta.low <= result.token_delta.estimate + 1e-6
    assert result.token_delta.estimate <= result.token_delta.high + 1e-6


def test_analysis_is_deterministic_for_a_seed(make_report: Make) -> None:
    report = make_report([([100, 150, 120, 130], [140, 160, 150, 170])])
    assert analyze_report(report, seed=3) == analyze_report(report, seed=3)


def test_json_and_text_and_markdown_formats(make_report: Make) -> None:
    result = analyze_report(_shifted(make_report, 1.4))
    data = json.loads(render(result, "json"))
    assert data["status"] == "block"
    assert data["exit_code"] == 1
    assert "token delta" in render(result, "text")
    markdown = render(result, "markdown")
    assert markdown.startswith(COMMENT_MARKER)
    assert "BLOCK" in markdown
    assert "| token delta |" in markdown


def test_github_format_writes_outputs_summary_and_annotations(
    make_report: Make, tmp_path: Path
) -> None:
    out, summary = tmp_path / "out", tmp_path / "summary"
    result = analyze_report(_shifted(make_report, 1.4))
    annotations = render_github(
        result, {"GITHUB_OUTPUT": str(out), "GITHUB_STEP_SUMMARY": str(summary)}
    )
    written = dict(line.split("=", 1) for line in out.read_text().splitlines())
    assert tuple(written) == GITHUB_OUTPUT_KEYS
    assert written["budget_status"] == "block"
    assert written["exit_code"] == "1"
    assert float(written["token_delta"]) == pytest.approx(40, abs=0.2)
    assert summary.read_text().startswith(COMMENT_MARKER)
    assert annotations.splitlines()[0].startswith("::error title=Fusion budget token delta::")
    assert "%25" in annotations  # '%' escaped in workflow commands


def test_cli_exit_codes(
    make_report: Make, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, _shifted(make_report, 1.4))
    assert main(["--report-file", str(path), "--output-format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["status"] == "block"
    ok = _write(tmp_path, _shifted(make_report, 1.0))
    comment = tmp_path / "comment.md"
    assert main(["--report-file", str(ok), "--comment-file", str(comment)]) == 0
    assert comment.read_text().startswith(COMMENT_MARKER)
    (tmp_path / "bad.json").write_text("{")
    assert main(["--report-file", str(tmp_path / "bad.json")]) == 2
    assert main(["--report-file", str(ok), "--token-warn-threshold", "nan"]) == 2
    with pytest.raises(SystemExit) as usage:
        main(["--output-format", "yaml"])
    assert usage.value.code == 2


def test_seed_cli_invocation_as_module(make_report: Make, tmp_path: Path) -> None:
    path = _write(tmp_path, _shifted(make_report, 1.18))
    out = tmp_path / "gh_out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fusion_ops.budget_analysis",
            "--report-file",
            str(path),
            "--token-warn-threshold",
            "12.0",
            "--token-block-threshold",
            "25.0",
            "--output-format",
            "github",
        ],
        capture_output=True,
        text=True,
        env={"GITHUB_OUTPUT": str(out), "PATH": ""},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "::warning title=Fusion budget token delta::" in proc.stdout
    assert "budget_status=warn" in out.read_text()


# ---------------------------------------------------------------- error-rate block rule
def _with_failures(make_report: Make, failed: int, runs: int = 10) -> BudgetReport:
    base = make_report([([100] * runs, [100] * runs)]).scenarios[0]
    candidate = base.candidate[: runs - failed] + tuple(
        Sample(ok=False, error="timeout") for _ in range(failed)
    )
    return BudgetReport(
        metadata=base_meta(make_report),
        scenarios=(ScenarioSamples("s0", None, base.baseline, candidate),),
    )


def base_meta(make_report: Make) -> dict[str, Any]:
    return make_report([([1, 2], [1, 2])]).metadata


def test_sixty_percent_failed_runs_block(make_report: Make, tmp_path: Path) -> None:
    report = _with_failures(make_report, 6)
    result = analyze_report(report)
    assert result.error_rate == pytest.approx(0.6)
    assert (result.status, result.exit_code) == ("block", 1)
    assert result.findings[-1].message.startswith("candidate error rate 60.0% exceeds the block")
    path = _write(tmp_path, report)
    assert main(["--report-file", str(path)]) == 1
    # the block limit is configurable: raised above 60%, the same report only warns
    assert main(["--report-file", str(path), "--block-error-rate", "0.7"]) == 0
    assert analyze_report(report, Thresholds(block_error_rate=0.7)).status == "warn"


def test_error_rate_just_above_the_block_limit_blocks(make_report: Make) -> None:
    assert analyze_report(_with_failures(make_report, 3)).status == "block"  # 30% > 20%
    assert analyze_report(_with_failures(make_report, 2)).status == "warn"  # 20% is not > 20%


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"block_error_rate": float("nan")}, "block_error_rate must be finite"),
        ({"block_error_rate": -0.1}, "block_error_rate must be >= 0"),
        ({"max_error_rate": 0.3, "block_error_rate": 0.2}, "must not exceed block_error_rate"),
    ],
)
def test_bad_error_rate_limits_raise(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        Thresholds(**kwargs)


# ---------------------------------------------------------------- bad numbers in a report
@pytest.mark.parametrize(
    "bad",
    [
        Sample(ok=True, input_tokens=10**400, output_tokens=1, latency_ms=1.0),
        Sample(ok=True, input_tokens=1, output_tokens=1, latency_ms=float("nan")),
        Sample(ok=True, input_tokens=-50, output_tokens=1, latency_ms=1.0),
        Sample(ok=True, input_tokens=1, output_tokens=1, latency_ms=None),
    ],
    ids=["huge-int", "nan-latency", "negative-tokens", "no-latency"],
)
def test_a_report_built_in_code_with_bad_numbers_is_error(make_report: Make, bad: Sample) -> None:
    good = make_report([([100, 110, 120], [100, 110, 120])]).scenarios[0]
    report = BudgetReport(
        metadata=base_meta(make_report),
        scenarios=(ScenarioSamples("s0", None, good.baseline, (*good.candidate, bad)),),
    )
    result = analyze_report(report)
    assert (result.status, result.exit_code) == ("error", 2)
    assert "not a finite number >= 0" in result.findings[0].message


def test_an_empty_report_built_in_code_is_error(make_report: Make) -> None:
    assert analyze_report(BudgetReport(base_meta(make_report), ())).status == "error"


def test_zero_token_replicates_are_error_not_pass(make_report: Make) -> None:
    """A +1150% regression whose baseline has zero-token runs: some replicates divide 0 by 0.
    The NaN used to reach the interval and every comparison with it was False: pass."""
    result = analyze_report(make_report([([0, 0, 0, 400], [0, 0, 0, 5000])]))
    assert result.status == "error"
    assert "baseline token total is 0 in" in result.findings[0].message


@pytest.mark.parametrize(
    "token_field",
    ["1" + "0" * 400, "1" + "0" * 5000, "1000000000001"],
    ids=["beyond-float", "beyond-int-digits", "above-max"],
)
def test_cli_huge_integer_in_a_report_is_exit_2(
    make_report: Make, tmp_path: Path, capsys: pytest.CaptureFixture[str], token_field: str
) -> None:
    text = json.dumps(_shifted(make_report, 1.0).to_json())
    text = text.replace('"input_tokens": 500', f'"input_tokens": {token_field}', 1)
    path = tmp_path / "huge.json"
    path.write_text(text)
    assert main(["--report-file", str(path)]) == 2
    out = capsys.readouterr().out
    assert "ERROR" in out
    assert "input_tokens" in out or "not valid UTF-8 JSON" in out


# ---------------------------------------------------------------- unexpected failures exit 2
def test_cli_unwritable_comment_file_is_exit_2(
    make_report: Make, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, _shifted(make_report, 1.4))  # a block verdict: exit 1 if written
    target = tmp_path / "no-such-dir" / "comment.md"
    assert main(["--report-file", str(path), "--comment-file", str(target)]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_module_process_exit_code_of_an_unexpected_failure_is_2(
    make_report: Make, tmp_path: Path
) -> None:
    path = _write(tmp_path, _shifted(make_report, 1.4))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fusion_ops.budget_analysis",
            "--report-file",
            str(path),
            "--output-format",
            "github",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "GITHUB_OUTPUT": str(tmp_path)},  # a directory: cannot be opened
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ")
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------- the chunked bootstrap
def _naive_intervals(
    report: BudgetReport, seed: int, n_boot: int, confidence: float
) -> dict[str, tuple[float, float]]:
    """Test oracle: every replicate materialised at once, drawn as documented (per side a
    child of SeedSequence(seed), per scenario a grandchild; a run's tokens and latency paired)."""
    sides = []
    for which in ("baseline", "candidate"):
        rows = [[s for s in getattr(sc, which) if s.ok] for sc in report.scenarios]
        sides.append(
            [
                (
                    np.array([s.total_tokens for s in r], float),
                    np.array([s.latency_ms for s in r], float),
                )
                for r in rows
            ]
        )
    tokens, p95 = [], []
    for side, child in zip(sides, np.random.SeedSequence(seed).spawn(2), strict=True):
        rngs = [np.random.default_rng(c) for c in child.spawn(len(side))]
        picks = [
            g.integers(0, len(t), size=(n_boot, len(t)))
            for g, (t, _) in zip(rngs, side, strict=True)
        ]
        tokens.append(sum(t[p].mean(axis=1) for (t, _), p in zip(side, picks, strict=True)))
        pooled = np.concatenate([lat[p] for (_, lat), p in zip(side, picks, strict=True)], axis=1)
        p95.append(np.quantile(pooled, 0.95, axis=1))
    alpha = 1 - confidence
    delta = (tokens[1] - tokens[0]) / tokens[0] * 100
    return {
        "token_delta": tuple(np.quantile(delta, [alpha, 1 - alpha])),
        "latency_p95": tuple(np.quantile(p95[1], [alpha, 1 - alpha])),
    }


@pytest.mark.parametrize("chunk_elements", [1, 37, 500, None])
def test_chunked_bootstrap_equals_the_naive_method(
    noisy_report: Callable[..., BudgetReport], chunk_elements: int | None
) -> None:
    report = noisy_report(0.1, 7, 5, 0.3, 3)
    lat = [float(v) for v in np.random.default_rng(9).lognormal(6, 0.4, 7)]
    report = BudgetReport(
        report.metadata,
        tuple(
            ScenarioSamples(
                sc.id,
                sc.category,
                tuple(replace(s, latency_ms=lat[i] + k) for i, s in enumerate(sc.baseline)),
                tuple(replace(s, latency_ms=lat[-i] * 1.1) for i, s in enumerate(sc.candidate)),
            )
            for k, sc in enumerate(report.scenarios)
        ),
    )
    result = analyze_report(report, n_bootstrap=301, seed=5, chunk_elements=chunk_elements)
    oracle = _naive_intervals(report, 5, 301, 0.95)
    for name, (low, high) in oracle.items():
        ci = getattr(result, name)
        assert (ci.low, ci.high) == (pytest.approx(low, abs=1e-4), pytest.approx(high, abs=1e-4))


def test_the_bootstrap_memory_is_bounded_by_the_chunk(make_report: Make) -> None:
    """8,000 runs per side x 1,000 replicates: the naive method holds >= 64 MB per array."""
    runs = [float(1000 + i % 97) for i in range(2000)]
    report = make_report([(runs, runs)] * 4)
    tracemalloc.start()
    try:
        analyze_report(report, n_bootstrap=1000, chunk_elements=50_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8_000_000
