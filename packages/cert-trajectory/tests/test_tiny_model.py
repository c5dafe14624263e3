"""The monitor on a real GPT-2 checkpoint trained in this session and loaded back by path."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from cert.trajectory import (
    ConfigError,
    HamiltonianMonitor,
    InvalidPromptError,
    ModelLoadError,
    ModelNotLoadedError,
    ReasoningTrajectoryMonitor,
    TrajectoryConfig,
    TrajectoryResult,
    load_model_for_monitoring,
)

CONFIG = TrajectoryConfig(max_new_tokens=12, max_mean_entropy=6.0, max_perplexity=1000.0)
PROMPTS = [
    "Return a new list",
    "The",
    "This module provides functions for working with files and directories",
    "Raise an exception if",
]

Reference = Callable[[Any, list[int], int], tuple[list[float], list[float]]]


@pytest.fixture(scope="module")
def monitor(tiny_model_dir: Path) -> HamiltonianMonitor:
    return HamiltonianMonitor(str(tiny_model_dir), config=CONFIG, preload=True, device="cpu")


def _check_against_reference(
    result: TrajectoryResult, model: Any, tokenizer: Any, reference: Reference
) -> None:
    prompt_ids = tokenizer(result.prompt)["input_ids"]
    ids = prompt_ids + [t.token_id for t in result.tokens]
    log_probs, entropies = reference(model, ids, len(prompt_ids))
    assert [t.log_prob for t in result.tokens] == pytest.approx(log_probs, abs=1e-5)
    assert [t.entropy for t in result.tokens] == pytest.approx(entropies, abs=1e-5)


@pytest.mark.parametrize(
    "config",
    [
        CONFIG,
        TrajectoryConfig(
            max_new_tokens=12, max_mean_entropy=6.0, temperature=1.7, top_p=0.8, seed=5
        ),
    ],
    ids=["greedy", "sampled-warped"],
)
def test_generation_signals_equal_plain_teacher_forced_log_softmax(
    monitor: HamiltonianMonitor, tiny: tuple[Any, Any], plain_teacher_forced: Reference,
    config: TrajectoryConfig,
) -> None:  # fmt: skip
    model, tokenizer = tiny
    result = monitor.analyze(PROMPTS[0], config=config)
    assert result.token_count >= 1
    _check_against_reference(result, model, tokenizer, plain_teacher_forced)


def test_score_equals_plain_teacher_forced_log_softmax(
    monitor: HamiltonianMonitor, tiny: tuple[Any, Any], plain_teacher_forced: Reference
) -> None:
    model, tokenizer = tiny
    result = monitor.score("Return the", " number of items in the list.")
    assert result.mode == "score"
    assert result.finish_reason == "scored"
    assert result.text == " number of items in the list."
    assert "".join(t.token for t in result.tokens) == result.text
    _check_against_reference(result, model, tokenizer, plain_teacher_forced)


def test_left_padded_batch_equals_one_at_a_time(monitor: HamiltonianMonitor) -> None:
    batch = monitor.analyze_batch(PROMPTS, config=CONFIG, batch_size=4)
    monitor.clear_cache()
    for prompt, batched in zip(PROMPTS, batch, strict=True):
        single = monitor.analyze(prompt, config=CONFIG)
        assert batched.prompt == prompt
        assert [t.token_id for t in batched.tokens] == [t.token_id for t in single.tokens]
        assert [t.log_prob for t in batched.tokens] == pytest.approx(
            [t.log_prob for t in single.tokens], abs=1e-4
        )
        assert [t.entropy for t in batched.tokens] == pytest.approx(
            [t.entropy for t in single.tokens], abs=1e-4
        )
        assert batched.perplexity == pytest.approx(single.perplexity, rel=1e-4)


def test_greedy_results_are_cached_and_sampled_ones_never(monitor: HamiltonianMonitor) -> None:
    monitor.clear_cache()
    before = monitor.cache_info()
    first = monitor.analyze(PROMPTS[1])
    second = monitor.analyze(PROMPTS[1])
    assert not first.cached
    assert second.cached
    assert second.tokens == first.tokens
    info = monitor.cache_info()
    assert info["hits"] == before["hits"] + 1
    sampled = TrajectoryConfig(max_new_tokens=4, max_mean_entropy=6.0, temperature=0.9)
    assert not monitor.analyze(PROMPTS[1], config=sampled).cached
    assert not monitor.analyze(PROMPTS[1], config=sampled).cached
    other = TrajectoryConfig(max_new_tokens=3, max_mean_entropy=6.0)
    assert not monitor.analyze(PROMPTS[1], config=other).cached  # config is part of the key


def test_concurrent_threads_get_the_same_results_as_sequential_calls(
    tiny_model_dir: Path,
) -> None:
    monitor = HamiltonianMonitor(str(tiny_model_dir), config=CONFIG, preload=True, cache_size=0)
    expected = [monitor.analyze(p).tokens for p in PROMPTS]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda p: monitor.analyze(p).tokens, PROMPTS * 2))
    assert got == expected * 2


def test_async_api_runs_in_threads(monitor: HamiltonianMonitor) -> None:
    async def run() -> tuple[list[TrajectoryResult], list[TrajectoryResult], TrajectoryResult]:
        singles = await asyncio.gather(*(monitor.analyze_async(p) for p in PROMPTS[:2]))
        batch = await monitor.analyze_batch_async(PROMPTS[:2])
        scored = await monitor.score_async("Return the", " list.")
        return list(singles), batch, scored

    singles, batch, scored = asyncio.run(run())
    assert [r.tokens for r in singles] == [r.tokens for r in batch]
    assert scored.mode == "score"


def test_result_round_trips_through_json(monitor: HamiltonianMonitor) -> None:
    result = monitor.analyze(PROMPTS[0])
    again = TrajectoryResult.from_dict(json.loads(result.to_json()))
    assert again == result
    assert result.avg_perplexity == result.perplexity
    assert result.avg_entropy == result.mean_entropy


def test_v3_api_with_load_model_for_monitoring(tiny_model_dir: Path) -> None:
    model, tokenizer = load_model_for_monitoring(str(tiny_model_dir), device="cpu")
    v3 = ReasoningTrajectoryMonitor(model, tokenizer, config=CONFIG)
    result = v3.monitor_generation("Return a new list")
    assert result.token_count >= 1
    assert result.mode == "generate"


def test_context_manager_loads_and_unloads(tiny_model_dir: Path) -> None:
    with HamiltonianMonitor(str(tiny_model_dir), config=CONFIG) as monitor:
        assert monitor.is_loaded
        assert monitor.analyze("The").token_count >= 1
    assert not monitor.is_loaded
    with pytest.raises(ModelNotLoadedError):
        monitor.analyze("The")


# ---------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    ("prompt", "message"),
    [("", "empty"), ("   \n", "empty"), (42, "string"), (None, "string"), (b"bytes", "string")],
)
def test_bad_prompts_are_typed_errors(
    monitor: HamiltonianMonitor, prompt: object, message: str
) -> None:
    with pytest.raises(InvalidPromptError, match=message):
        monitor.analyze(prompt)  # type: ignore[arg-type]


def test_too_long_prompts_are_rejected_by_chars_tokens_and_positions(
    monitor: HamiltonianMonitor,
) -> None:
    with pytest.raises(InvalidPromptError, match="max_prompt_chars"):
        monitor.analyze("x" * 10_001)
    tight = TrajectoryConfig(max_new_tokens=2, max_mean_entropy=6.0, max_prompt_tokens=3)
    with pytest.raises(InvalidPromptError, match="max_prompt_tokens"):
        monitor.analyze("one two three four five six", config=tight)
    with pytest.raises(InvalidPromptError, match="positions"):
        monitor.analyze("word " * 300)  # 256 positions in the tiny model
    with pytest.raises(InvalidPromptError, match="response"):
        monitor.score("The", "")


@pytest.mark.parametrize(
    ("prompts", "exc"),
    [("a string", InvalidPromptError), ([], InvalidPromptError), (["ok", 3], InvalidPromptError)],
)
def test_bad_batches_are_typed_errors(
    monitor: HamiltonianMonitor, prompts: object, exc: type
) -> None:
    with pytest.raises(exc):
        monitor.analyze_batch(prompts)  # type: ignore[arg-type]


@pytest.mark.parametrize("timeout", [0, -1.0, float("nan"), float("inf"), True, "5"])
def test_bad_timeouts_are_config_errors(monitor: HamiltonianMonitor, timeout: object) -> None:
    with pytest.raises(ConfigError, match="timeout"):
        monitor.analyze("The", timeout=timeout)  # type: ignore[arg-type]


def test_bad_constructor_arguments(tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="model_name"):
        HamiltonianMonitor()
    with pytest.raises(ConfigError, match="device"):
        HamiltonianMonitor(str(tiny_model_dir), device="gpu0")
    with pytest.raises(ConfigError, match="config"):
        HamiltonianMonitor(str(tiny_model_dir), config={"max_new_tokens": 3})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="dtype"):
        HamiltonianMonitor(str(tiny_model_dir), dtype="float13", preload=True)
    with pytest.raises(ModelLoadError, match="no-such-model"):
        HamiltonianMonitor(str(tmp_path / "no-such-model"), preload=True)
    # an entropy limit above ln 512 ≈ 6.24 could never fire on this vocabulary
    with pytest.raises(ConfigError, match="never be exceeded"):
        HamiltonianMonitor(
            str(tiny_model_dir), config=TrajectoryConfig(max_mean_entropy=7.0), preload=True
        )


def test_corrupted_checkpoint_is_a_load_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for item in tiny_model_dir.iterdir():
        if item.is_file():
            (broken / item.name).write_bytes(item.read_bytes())
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="broken"):
        load_model_for_monitoring(str(broken), device="cpu")
    assert (tiny_model_dir / "config.json").read_text().startswith("{")  # source untouched
