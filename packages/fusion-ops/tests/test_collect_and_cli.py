from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import jsonschema
import pytest
import yaml

from fusion_ops.backends import Completion, CompletionBackend, OfflineBackend
from fusion_ops.cli import main
from fusion_ops.cli_support import guarded_main
from fusion_ops.collect import base_prompt, collect_report, parse_strategy
from fusion_ops.errors import BackendError, CollectionAbortedError, InvalidInputError
from fusion_ops.report import parse_report, report_schema
from fusion_ops.runtime_router import load_golden_scenarios
from fusion_ops.tokenizer import count_tokens

SCENARIOS = load_golden_scenarios()[:6]


def test_offline_backend_is_deterministic_and_really_tokenizes() -> None:
    backend = OfflineBackend(seed=1)
    prompt = base_prompt(SCENARIOS[0])
    first = backend.complete(prompt, run=0)
    assert first == backend.complete(prompt, run=0)
    assert first.input_tokens == count_tokens(prompt)
    assert first.output_tokens == count_tokens(first.text)
    assert first.latency_ms > 0
    assert isinstance(backend, CompletionBackend)
    runs = {backend.complete(prompt, run=r).output_tokens for r in range(10)}
    assert len(runs) > 1  # run-to-run variation exists


def test_an_overlay_really_costs_tokens() -> None:
    plain, overlay = parse_strategy("plain"), parse_strategy("overlay:rollback_first")
    backend = OfflineBackend()
    for scenario in SCENARIOS:
        p, _ = plain.prompt_for(scenario)
        o, used = overlay.prompt_for(scenario)
        assert used == "rollback_first"
        assert (
            backend.complete(o, run=0).input_tokens > backend.complete(p, run=0).input_tokens + 300
        )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"seed": 1.5}, "seed"),
        ({"failure_rate": 2}, "failure_rate"),
        ({"overhead_ms": float("nan")}, "overhead_ms"),
    ],
)
def test_backend_rejects_bad_settings(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        OfflineBackend(**kwargs)  # type: ignore[arg-type]


def test_backend_rejects_bad_prompts() -> None:
    with pytest.raises(InvalidInputError, match="prompt"):
        OfflineBackend().complete("", run=0)
    with pytest.raises(InvalidInputError, match="run"):
        OfflineBackend().complete("x", run=-1)


def test_collected_report_follows_the_schema_and_records_failures() -> None:
    report = collect_report(
        SCENARIOS,
        baseline=parse_strategy("plain"),
        candidate=parse_strategy("routed"),
        backend=OfflineBackend(failure_rate=0.2),
        runs=5,
        candidate_git_sha="a" * 40,
    )
    document = report.to_json()
    jsonschema.validate(document, report_schema())
    assert parse_report(document) == report
    samples = [s for sc in report.scenarios for s in sc.baseline + sc.candidate]
    assert len(samples) == 6 * 5 * 2
    failed = [s for s in samples if not s.ok]
    assert failed
    assert all("BackendError" in (s.error or "") for s in failed)
    assert report.metadata["candidate"]["git_sha"] == "a" * 40
    assert report.scenarios[0].candidate_overlay == "rollback_first"


class Broken:
    name = "broken"

    def complete(self, prompt: str, *, run: int) -> Completion:
        raise BackendError("down")


def test_a_broken_backend_yields_an_error_verdict_not_a_crash() -> None:
    from fusion_ops.budget_analysis import analyze_report

    report = collect_report(
        SCENARIOS[:2],
        baseline=parse_strategy("plain"),
        candidate=parse_strategy("plain"),
        backend=Broken(),
        runs=3,
    )
    assert analyze_report(report).status == "error"


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("overlay:nope", "not one of"),
        ("overlay:", "strategy must be"),
        ("fancy", "strategy must be"),
        ("", "strategy"),
    ],
)
def test_bad_strategies(spec: str, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        parse_strategy(spec)


def test_collect_rejects_bad_arguments() -> None:
    kw = {
        "baseline": parse_strategy("plain"),
        "candidate": parse_strategy("plain"),
        "backend": OfflineBackend(),
    }
    with pytest.raises(InvalidInputError, match="runs"):
        collect_report(SCENARIOS, runs=0, **kw)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="scenarios must not be empty"):
        collect_report([], runs=1, **kw)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="duplicate"):
        collect_report([SCENARIOS[0], SCENARIOS[0]], runs=1, **kw)  # type: ignore[arg-type]


def test_cli_collect_then_analyze(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenarios = tmp_path / "scenarios.yaml"
    scenarios.write_text(yaml.safe_dump({"scenarios": SCENARIOS}))
    report = tmp_path / "r.json"
    args = ["collect", "--scenarios", str(scenarios), "--runs", "5", "-o", str(report)]
    assert main([*args, "--baseline", "plain", "--candidate", "overlay:rollback_first"]) == 0
    jsonschema.validate(json.loads(report.read_text()), report_schema())
    assert main(["analyze", "--report-file", str(report)]) == 1  # overlays cost > 25% tokens
    same = tmp_path / "same.json"
    assert main([*args[:-1], str(same), "--baseline", "routed", "--candidate", "routed"]) == 0
    assert main(["analyze", "--report-file", str(same), "--output-format", "json"]) == 0
    capsys.readouterr()
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "fusion-ops budget report"
    assert main([*args, "--baseline", "overlay:missing"]) == 2
    assert main(["collect"]) == 2  # no -o (optional only for --dry-run)
    assert "needs -o/--output" in capsys.readouterr().err


def test_cli_routed_config_dirs_compare_two_checkouts(tmp_path: Path, router_dir: Path) -> None:
    """The CI setup: baseline and candidate config dirs differ by one edited overlay."""
    candidate = tmp_path / "candidate"
    shutil.copytree(router_dir, candidate)
    overlay = candidate / "micro_overlays" / "rollback_first.md"
    overlay.write_text(overlay.read_text() + "\n" + "Always restate every step twice. " * 200)
    report = tmp_path / "r.json"
    assert (
        main(
            [
                "collect",
                "--baseline",
                f"routed:{router_dir}",
                "--candidate",
                f"routed:{candidate}",
                "--runs",
                "5",
                "-o",
                str(report),
            ]
        )
        == 0
    )
    meta = json.loads(report.read_text())["metadata"]
    assert meta["baseline"]["config_hash"] != meta["candidate"]["config_hash"]
    assert main(["analyze", "--report-file", str(report), "--output-format", "github"]) == 1


class BadUsage:
    """A backend reporting impossible usage numbers (a buggy client, a proxy returning NaN)."""

    name = "bad-usage"

    def __init__(self, input_tokens: object, latency_ms: object) -> None:
        self.input_tokens, self.latency_ms = input_tokens, latency_ms

    def complete(self, prompt: str, *, run: int) -> Completion:
        return Completion("x", self.input_tokens, 5, self.latency_ms)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("input_tokens", "latency_ms"),
    [(-3, 10.0), (10**400, 10.0), (10**12 + 1, 10.0), (5, float("nan")), (5, None), (2.5, 10.0)],
    ids=["negative", "huge-int", "above-max", "nan-latency", "no-latency", "float-tokens"],
)
def test_impossible_backend_usage_stops_the_run(input_tokens: object, latency_ms: object) -> None:
    """A backend reporting usage no report may hold is broken: collection stops (typed error,
    partial report kept), it never records the number."""
    with pytest.raises(CollectionAbortedError, match="invalid completion") as stopped:
        collect_report(
            SCENARIOS[:1],
            baseline=parse_strategy("plain"),
            candidate=parse_strategy("plain"),
            backend=BadUsage(input_tokens, latency_ms),  # type: ignore[arg-type]
            runs=2,
        )
    parse_report(stopped.value.partial.to_json())  # what was kept is still a valid report


def test_cli_collect_to_an_unwritable_path_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenarios = tmp_path / "scenarios.yaml"
    scenarios.write_text(yaml.safe_dump({"scenarios": SCENARIOS[:1]}))
    target = tmp_path / "missing-dir" / "r.json"
    assert main(["collect", "--scenarios", str(scenarios), "--runs", "2", "-o", str(target)]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_cli_analyze_unwritable_comment_file_is_exit_2(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    scenarios = tmp_path / "scenarios.yaml"
    scenarios.write_text(yaml.safe_dump({"scenarios": SCENARIOS[:2]}))
    assert main(["collect", "--scenarios", str(scenarios), "--runs", "3", "-o", str(report)]) == 0
    comment = tmp_path / "missing-dir" / "c.md"
    assert main(["analyze", "--report-file", str(report), "--comment-file", str(comment)]) == 2


def test_the_shared_wrapper_maps_every_failure_to_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def failing(exc: BaseException) -> Callable[[Sequence[str] | None], int]:
        def main(argv: Sequence[str] | None = None) -> int:
            raise exc

        return main

    for exc in (
        ZeroDivisionError("float division by zero"),
        OverflowError("int too large to convert to float"),
        PermissionError(13, "Permission denied", "/x/comment.md"),
        InvalidInputError("token_warn must be finite, got nan"),
        KeyboardInterrupt(),
    ):
        assert guarded_main(failing(exc))([]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ")
        assert "Traceback" not in err
    assert guarded_main(lambda argv=None: 7)([]) == 2  # only 0, 1, 2 ever leave a CLI
    assert guarded_main(lambda argv=None: 1)([]) == 1  # a verdict passes through unchanged
    with pytest.raises(SystemExit) as usage:  # argparse's own exits are left alone
        guarded_main(failing(SystemExit(2)))([])
    assert usage.value.code == 2
