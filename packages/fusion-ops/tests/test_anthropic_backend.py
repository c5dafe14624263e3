"""The anthropic backend: the real SDK against the fake Messages API on 127.0.0.1."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from fusion_ops import cli
from fusion_ops.anthropic_backend import AnthropicBackend
from fusion_ops.backends import Completion
from fusion_ops.collect import base_prompt, call_prompts, parse_strategy
from fusion_ops.errors import BackendError, BackendRequestError, InvalidInputError
from fusion_ops.report import load_report
from fusion_ops.runtime_router import load_golden_scenarios
from fusion_ops.spend import Prices, SpendCap, prompt_token_bound

KEY = "sk-ant-test-not-a-secret-0123"
USAGE = {
    "input_tokens": 1234,
    "output_tokens": 56,
    "cache_read_input_tokens": 789,
    "cache_creation_input_tokens": 12,
}


@pytest.fixture
def env(messages_api: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The SDK finds the fake server and the key only through the environment."""
    monkeypatch.setenv("ANTHROPIC_BASE_URL", messages_api.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.delenv("CI", raising=False)
    return messages_api


@pytest.fixture
def scenarios(tmp_path: Path) -> Path:
    path = tmp_path / "scenarios.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "scenarios": [
                    {
                        "id": f"s{i}",
                        "category": "data_operations",
                        "complexity": 0.5,
                        "description": f"Migrate table {i} without downtime.",
                    }
                    for i in range(2)
                ]
            }
        )
    )
    return path


def _collect(scenarios: Path, out: Path, *extra: str) -> int:
    return cli.main(
        [
            "collect",
            "--backend",
            "anthropic",
            "--model",
            "claude-test-1",
            "--scenarios",
            str(scenarios),
            "--baseline",
            "plain",
            "--candidate",
            "overlay:rollback_first",
            "--runs",
            "2",
            "--max-tokens",
            "300",
            "--max-spend-usd",
            "5",
            "--price-input",
            "1",
            "--price-output",
            "5",
            "-o",
            str(out),
            *extra,
        ]
    )


def test_usage_numbers_end_up_in_the_report_exactly(
    reply: Any, env: Any, scenarios: Path, tmp_path: Path
) -> None:
    env.default = reply(usage=USAGE)
    out = tmp_path / "r.json"
    assert _collect(scenarios, out, "--concurrency", "2") == 0
    report = load_report(out)
    samples = [s for sc in report.scenarios for s in sc.baseline + sc.candidate]
    assert len(samples) == 2 * 2 * 2 == len(env.requests)
    for sample in samples:
        assert sample.ok
        assert sample.input_tokens == 1234
        assert sample.output_tokens == 56
        assert sample.cache_read_input_tokens == 789
        assert sample.cache_creation_input_tokens == 12
        assert sample.latency_ms is not None
        assert sample.latency_ms > 0
    raw = json.loads(out.read_text())["scenarios"][0]["baseline"]["samples"][0]
    assert {k: raw[k] for k in USAGE} == USAGE
    assert report.metadata["model"] == "anthropic/claude-test-1"
    # the money follows from the same numbers: 1234x$1 + 56x$5 + 12x$1.25 + 789x$0.10 per MTok
    per_call = (Decimal(1234) + 56 * 5 + 12 * Decimal("1.25") + 789 * Decimal("0.1")) / 10**6
    assert Decimal(report.metadata["spend"]["spent_usd"]) == per_call * 8
    first = env.requests[0]
    assert first.api_key == KEY
    assert first.body["model"] == "claude-test-1"
    assert first.body["max_tokens"] == 300
    assert first.body["messages"][0]["role"] == "user"
    assert KEY not in out.read_text()


def test_a_529_is_retried_by_the_sdk_and_only_by_it(reply: Any, env: Any) -> None:
    env.script(reply(status=529))
    backend = AnthropicBackend("claude-test-1", max_retries=2)
    completion = backend.complete("hello", run=0)
    assert completion.input_tokens == 11
    assert [r.retry_count for r in env.requests] == [0, 1]  # the second try is the SDK's


def test_a_529_after_the_sdk_gives_up_is_a_failed_sample_and_the_run_goes_on(
    reply: Any, env: Any, scenarios: Path, tmp_path: Path
) -> None:
    env.default = reply(status=529)
    out = tmp_path / "r.json"
    assert _collect(scenarios, out, "--max-retries", "1") == 0
    report = load_report(out)
    samples = [s for sc in report.scenarios for s in sc.baseline + sc.candidate]
    assert len(samples) == 8
    assert not any(s.ok for s in samples)
    assert all("529" in (s.error or "") for s in samples)
    # 8 calls x (1 try + 1 SDK retry): nothing on top of the SDK's retries
    assert [r.retry_count for r in env.requests] == [0, 1] * 8
    assert report.metadata["spend"]["spent_usd"] == "0"


def test_a_400_is_not_retried_and_ends_the_run_with_exit_2(
    reply: Any, env: Any, scenarios: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env.script(reply(status=400))
    out = tmp_path / "r.json"
    assert _collect(scenarios, out, "--max-retries", "3") == 2
    assert [r.retry_count for r in env.requests] == [0]
    assert not out.exists()
    err = capsys.readouterr().err
    assert "HTTP 400" in err
    assert "stopped after 0 of 8 calls" in err
    partial = load_report(Path(f"{out}.partial.json"))
    assert "HTTP 400" in partial.metadata["aborted"]
    assert all(not s.ok for sc in partial.scenarios for s in sc.baseline + sc.candidate)


def test_the_spend_cap_stops_before_a_call_that_might_not_fit(
    reply: Any, env: Any, scenarios: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env.default = reply(usage={"input_tokens": 100, "output_tokens": 300})
    out = tmp_path / "r.json"
    # each call may cost up to ~$0.0017 (bound) and really costs $0.0016: after 4 calls
    # ($0.0064) a 5th might reach ~$0.0081 > $0.0075, so it is not sent
    prompt = base_prompt(yaml.safe_load(scenarios.read_text())["scenarios"][0])
    bound = (Decimal("1.25") * prompt_token_bound(prompt) + 300 * 5) / 10**6
    assert Decimal("0.0016") * 3 + bound <= Decimal("0.0075") < Decimal("0.0016") * 4 + bound
    code = cli.main(
        [
            "collect",
            "--backend",
            "anthropic",
            "--model",
            "m",
            "--scenarios",
            str(scenarios),
            "--runs",
            "2",
            "--baseline",
            "plain",
            "--candidate",
            "plain",
            "--max-tokens",
            "300",
            "--max-spend-usd",
            "0.0075",
            "--price-input",
            "1",
            "--price-output",
            "5",
            "-o",
            str(out),
        ]
    )
    assert code == 2
    assert "spend cap" in capsys.readouterr().err
    partial = load_report(Path(f"{out}.partial.json"))
    spend = partial.metadata["spend"]
    ok = [s for sc in partial.scenarios for s in sc.baseline + sc.candidate if s.ok]
    assert len(ok) == len(env.requests) == spend["billed_requests"] == 4
    assert Decimal(spend["spent_usd"]) == 4 * (Decimal(100) + 300 * 5) / 10**6
    assert Decimal(spend["spent_usd"]) <= Decimal("0.0075")


def test_a_cap_below_one_call_sends_nothing(env: Any) -> None:
    cap = SpendCap(0.0001, Prices.per_mtok(1, 5), max_output_tokens=1000)
    with pytest.raises(Exception, match="spend cap"):
        cap.reserve("x" * 100)
    assert env.requests == []


def test_spend_cap_accounts_reservations_and_releases() -> None:
    prices = Prices.per_mtok(2, 10)
    assert prices.cache_write == Decimal("2.50")
    assert prices.cache_read == Decimal("0.2")
    cap = SpendCap(1, prices, max_output_tokens=100)
    held = cap.reserve("abc")
    assert held == (Decimal("2.5") * prompt_token_bound("abc") + 1000) / 10**6
    cap.release(held)
    assert cap.held == 0
    assert cap.spent == 0
    held = cap.reserve("abc")
    cost = cap.settle(held, Completion("", 10, 20, 1.0, cache_read_input_tokens=100))
    assert cost == (Decimal(20) + 200 + 20) / 10**6 == cap.spent


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cap_usd": float("nan")}, "max_spend_usd"),
        ({"cap_usd": 0}, "max_spend_usd"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
    ],
)
def test_spend_cap_rejects_bad_settings(kwargs: dict[str, Any], match: str) -> None:
    settings: dict[str, Any] = {"cap_usd": 1.0, "max_output_tokens": 10, **kwargs}
    with pytest.raises(InvalidInputError, match=match):
        SpendCap(settings.pop("cap_usd"), Prices.per_mtok(1, 1), **settings)
    with pytest.raises(InvalidInputError, match="price_output"):
        Prices.per_mtok(1, float("inf"))


def test_bad_usage_from_the_api_stops_the_run(reply: Any, env: Any) -> None:
    env.script(reply(usage={"input_tokens": -1, "output_tokens": 3}))
    with pytest.raises(BackendRequestError, match="input_tokens"):
        AnthropicBackend("m").complete("hi", run=0)


def test_transport_failure_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    backend = AnthropicBackend("m", base_url="http://127.0.0.1:9", max_retries=0, timeout_s=2)
    with pytest.raises(BackendError) as info:
        backend.complete("hi", run=0)
    assert not isinstance(info.value, BackendRequestError)


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--backend", "anthropic", "--max-spend-usd", "1"], "needs --model"),
        (["--backend", "anthropic", "--model", "m"], "needs --max-spend-usd"),
        (["--backend", "anthropic", "--model", "m", "--max-spend-usd", "1"], "--price-input"),
        (["--model", "m"], "--backend anthropic only"),
        (["--backend-option", "a=b"], "module:Class only"),
        (["--concurrency", "0"], "concurrency"),
    ],
)
def test_collect_usage_errors_exit_2_before_any_call(
    env: Any,
    argv: list[str],
    match: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = cli.main(["collect", "--runs", "1", "-o", str(tmp_path / "r.json"), *argv])
    assert code == 2
    assert match in capsys.readouterr().err
    assert env.requests == []


def test_progress_bar_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    with cli._progress_bar(3) as bar:
        assert not bar.disable
    monkeypatch.setenv("CI", "true")
    with cli._progress_bar(3) as bar:
        assert bar.disable


def test_dry_run_prices_the_run_without_calling(
    env: Any, scenarios: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["collect", "--dry-run", "--scenarios", str(scenarios), "--runs", "3"]
    prices = ["--price-input", "1", "--price-output", "5", "--max-tokens", "100"]
    assert cli.main([*argv, *prices]) == 0
    out = capsys.readouterr().out
    prompts = call_prompts(
        load_golden_scenarios(scenarios),
        baseline=parse_strategy("plain"),
        candidate=parse_strategy("routed"),
        runs=3,
    )
    bound = sum(Prices.per_mtok(1, 5).worst_case(p, 100) for p in prompts)
    assert "12 calls (2 scenarios x 3 runs x 2 sides)" in out
    assert f"${bound:.4f}" in out
    assert env.requests == []
    assert cli.main([*argv]) == 2  # no prices, no estimate
