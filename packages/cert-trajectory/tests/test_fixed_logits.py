"""Exact signals through the real generate(), with a model whose logits come from a table."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from cert.trajectory import GenerationError, HamiltonianMonitor, TrajectoryConfig

CONFIG = TrajectoryConfig(max_mean_entropy=2.0, max_new_tokens=8)


@pytest.fixture
def chain_monitor(make_fixed: Callable[..., tuple[Any, Any]]) -> HamiltonianMonitor:
    model, tokenizer = make_fixed()
    return HamiltonianMonitor(model=model, tokenizer=tokenizer, config=CONFIG, preload=True)


def test_entropies_are_ln2_ln8_and_zero_exactly(chain_monitor: HamiltonianMonitor) -> None:
    result = chain_monitor.analyze("t1")
    assert [t.token_id for t in result.tokens] == [2, 4, 0]
    assert [t.entropy for t in result.tokens] == pytest.approx(
        [math.log(2), math.log(8), 0.0], abs=1e-6
    )
    assert [t.log_prob for t in result.tokens] == pytest.approx(
        [-math.log(2), -math.log(8), 0.0], abs=1e-6
    )
    assert [t.margin for t in result.tokens] == pytest.approx([0.0, 0.0, 1.0], abs=1e-6)
    # top-10 of eight equal tokens (plus zeros) renormalises to a uniform over 8
    assert result.tokens[1].topk_negentropy == pytest.approx(
        (math.log(10) - math.log(8)) / math.log(10), abs=1e-6
    )
    assert result.perplexity == pytest.approx(16 ** (1 / 3), rel=1e-6)  # exp((ln2+ln8)/3)
    assert result.mean_entropy == pytest.approx(math.log(16) / 3, abs=1e-6)
    assert result.finish_reason == "eos"
    assert not result.truncated
    assert result.text == "t2 t4"


def test_entropy_check_can_fail_and_names_the_check(
    make_fixed: Callable[..., tuple[Any, Any]],
) -> None:
    model, tokenizer = make_fixed()
    strict = TrajectoryConfig(max_mean_entropy=0.5, max_perplexity=2.0, max_new_tokens=8)
    with HamiltonianMonitor(model=model, tokenizer=tokenizer, config=strict) as monitor:
        result = monitor.analyze("t1")
    assert not result.passed_quality_check
    assert result.failed_checks == ["perplexity", "mean_entropy"]


def test_sampling_is_recorded_and_signals_stay_raw(chain_monitor: HamiltonianMonitor) -> None:
    # temperature 5 flattens the sampling distribution; the signals must not see that
    hot = TrajectoryConfig(max_mean_entropy=2.0, temperature=5.0, top_p=0.5, seed=1)
    result = chain_monitor.analyze("t1", config=hot)
    assert result.decoding == {"strategy": "sample", "temperature": 5.0, "top_p": 0.5, "seed": 1}
    assert result.tokens[0].entropy == pytest.approx(math.log(2), abs=1e-6)
    assert result.tokens[0].log_prob == pytest.approx(-math.log(2), abs=1e-6)
    # after t2 the model spreads over 8 tokens; after t3 it ends surely
    expected = math.log(8) if result.tokens[0].token_id == 2 else 0.0
    assert result.tokens[1].entropy == pytest.approx(expected, abs=1e-6)


def test_timeout_returns_partial_result_flagged_truncated(
    chain_monitor: HamiltonianMonitor,
) -> None:
    looping = TrajectoryConfig(max_mean_entropy=2.0, max_new_tokens=4000)
    result = chain_monitor.analyze("t5", config=looping, timeout=1e-6)
    assert result.truncated
    assert result.finish_reason == "timeout"
    assert 1 <= result.token_count < 4000
    assert all(t.token_id == 5 for t in result.tokens)
    # a truncated result is not cached: asking again computes again
    again = chain_monitor.analyze("t5", config=looping, timeout=1e-6)
    assert not again.cached


def test_length_limit_is_not_a_timeout(chain_monitor: HamiltonianMonitor) -> None:
    result = chain_monitor.analyze(
        "t5", config=TrajectoryConfig(max_mean_entropy=2.0, max_new_tokens=3)
    )
    assert result.finish_reason == "length"
    assert not result.truncated
    assert result.token_count == 3


def test_nan_logits_raise_generation_error(make_fixed: Callable[..., tuple[Any, Any]]) -> None:
    table = [[math.nan] * 16 for _ in range(16)]
    model, tokenizer = make_fixed(table)
    with (
        HamiltonianMonitor(model=model, tokenizer=tokenizer, config=CONFIG) as monitor,
        pytest.raises(GenerationError, match="non-finite"),
    ):
        monitor.analyze("t1")


def test_batch_with_early_finishers_matches_single_runs(chain_monitor: HamiltonianMonitor) -> None:
    prompts = ["t1", "t5 t1 t2", "t2", "t5"]
    cfg = TrajectoryConfig(max_mean_entropy=2.0, max_new_tokens=5)
    batch = chain_monitor.analyze_batch(prompts, config=cfg)
    chain_monitor.clear_cache()
    for prompt, batched in zip(prompts, batch, strict=True):
        single = chain_monitor.analyze(prompt, config=cfg)
        assert [t.token_id for t in batched.tokens] == [t.token_id for t in single.tokens]
        assert [t.entropy for t in batched.tokens] == pytest.approx(
            [t.entropy for t in single.tokens], abs=1e-6
        )
        assert batched.finish_reason == single.finish_reason


def test_tokenizer_without_pad_token_still_batches(
    make_fixed: Callable[..., tuple[Any, Any]],
) -> None:
    model, tokenizer = make_fixed()
    tokenizer.pad_token = None
    assert tokenizer.pad_token_id is None
    with HamiltonianMonitor(model=model, tokenizer=tokenizer, config=CONFIG) as monitor:
        results = monitor.analyze_batch(["t1", "t5 t2"])
    assert [[t.token_id for t in r.tokens] for r in results] == [[2, 4, 0], [4, 0]]
