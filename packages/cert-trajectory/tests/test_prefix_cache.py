"""The prefix cache: reused keys and values give the signals of an uncached lone run.

Prompts share two long preambles (as a service's overlays do), with tasks of different lengths
and one prompt without a preamble, all in one left-padded batch. The reference is a monitor
without a prefix cache, one prompt at a time.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch

from cert.trajectory import ConfigError, HamiltonianMonitor, TrajectoryConfig, TrajectoryResult
from cert.trajectory.prefix import PrefixCache

CONFIG = TrajectoryConfig(max_new_tokens=10, max_mean_entropy=6.0, max_perplexity=1e6)
PREAMBLE_A = (
    "Operating notes. Return the value of the attribute, or raise an exception if the object "
    "has no such attribute. Read the file line by line and close it when done.\n\nTask: "
)
PREAMBLE_B = (
    "Guidance. This module provides functions for working with paths, files and directories; "
    "every function returns a new list and never modifies its argument.\n\nTask: "
)
PROMPTS = [
    PREAMBLE_A + "Return a new list",
    PREAMBLE_B + "Open the file",
    PREAMBLE_A + "Raise an exception if the value is not a number and explain why",
    "The",  # no preamble: shorter than the others' uncached rest
    PREAMBLE_B + "Split the path into a pair",
]
REL = 1e-6


def assert_same_signals(expected: TrajectoryResult, got: TrajectoryResult) -> None:
    assert [t.token_id for t in got.tokens] == [t.token_id for t in expected.tokens]
    for mine, theirs in zip(expected.tokens, got.tokens, strict=True):
        assert theirs.log_prob == pytest.approx(mine.log_prob, rel=REL, abs=1e-9)
        assert theirs.entropy == pytest.approx(mine.entropy, rel=REL, abs=1e-9)
    assert got.perplexity == pytest.approx(expected.perplexity, rel=REL)


@pytest.fixture
def model_pair(tiny: tuple[Any, Any]) -> tuple[Any, Any]:
    """A private copy of the session's model, so in-place weight changes stay in this test."""
    model, tokenizer = tiny
    return copy.deepcopy(model), tokenizer


def monitors(model: Any, tokenizer: Any) -> tuple[HamiltonianMonitor, HamiltonianMonitor]:
    kwargs: dict[str, Any] = {"config": CONFIG, "preload": True, "cache_size": 0}
    plain = HamiltonianMonitor(model=model, tokenizer=tokenizer, **kwargs)
    cached = HamiltonianMonitor(
        model=model, tokenizer=tokenizer, prefix_cache_tokens=4096, **kwargs
    )
    return plain, cached


def test_a_mixed_batch_with_cached_prefixes_equals_uncached_lone_runs(model_pair) -> None:
    plain, cached = monitors(*model_pair)
    lone = [plain.analyze(p) for p in PROMPTS]
    first = cached.analyze_batch(PROMPTS, batch_size=len(PROMPTS))  # learns both preambles
    learnt = cached.prefix_cache_info()
    assert learnt is not None
    assert learnt["entries"] == 2
    assert plain.prefix_cache_info() is None
    second = cached.analyze_batch(PROMPTS, batch_size=len(PROMPTS))
    after = cached.prefix_cache_info()
    assert after is not None
    assert after["reused_tokens"] > learnt["reused_tokens"]
    assert after["computed_tokens"] == learnt["computed_tokens"]  # computed once, then reused
    for expected, a, b in zip(lone, first, second, strict=True):
        assert_same_signals(expected, a)
        assert_same_signals(expected, b)
    for prompt, expected in zip(PROMPTS, lone, strict=True):  # alone, from the cache too
        assert_same_signals(expected, cached.analyze(prompt))


def test_weights_changed_in_place_empty_the_cache(model_pair) -> None:
    model, tokenizer = model_pair
    plain, cached = monitors(model, tokenizer)
    cached.analyze_batch(PROMPTS, batch_size=len(PROMPTS))
    before = cached.prefix_cache_info()
    assert before is not None
    with torch.no_grad():
        next(model.parameters()).mul_(1.5)
    changed = cached.analyze_batch(PROMPTS, batch_size=len(PROMPTS))
    for prompt, got in zip(PROMPTS, changed, strict=True):
        assert_same_signals(plain.analyze(prompt), got)
    after = cached.prefix_cache_info()
    assert after is not None
    # the old entries were dropped and both preambles computed again with the new weights
    assert after["entries"] == 2
    assert after["computed_tokens"] == 2 * before["computed_tokens"]


def test_unload_empties_the_cache(model_pair) -> None:
    _, cached = monitors(*model_pair)
    cached.analyze_batch(PROMPTS, batch_size=len(PROMPTS))
    cached.unload()
    assert cached.prefix_cache_info()["entries"] == 0  # type: ignore[index]


def test_a_model_without_a_key_value_cache_is_served_uncached(make_fixed) -> None:
    model, tokenizer = make_fixed()
    prompts = ["t12 " * 40 + "t1", "t12 " * 40 + "t5 t2"]
    cfg = TrajectoryConfig(max_new_tokens=4, max_mean_entropy=2.0)
    kwargs: dict[str, Any] = {"config": cfg, "cache_size": 0, "preload": True}
    plain = HamiltonianMonitor(model=model, tokenizer=tokenizer, **kwargs)
    cached = HamiltonianMonitor(
        model=model, tokenizer=tokenizer, prefix_cache_tokens=1024, **kwargs
    )
    for _ in range(2):
        got = cached.analyze_batch(prompts, config=cfg)
    for prompt, result in zip(prompts, got, strict=True):
        assert_same_signals(plain.analyze(prompt, config=cfg), result)
    info = cached.prefix_cache_info()
    assert info is not None
    assert info["entries"] == 0
    assert info["reused_tokens"] == 0


@pytest.mark.parametrize("value", [-1, True, 1.5, "64", None])
def test_bad_prefix_cache_sizes_are_refused(tiny_model_dir: Path, value: Any) -> None:
    with pytest.raises(ConfigError, match="prefix_cache_tokens") as caught:
        HamiltonianMonitor(str(tiny_model_dir), prefix_cache_tokens=value)
    assert caught.value.context["field"] == "prefix_cache_tokens"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"min_tokens": 0}, "min_tokens"),
        ({"history": False}, "history"),
        ({"max_tokens": float("nan")}, "max_tokens"),
    ],
)
def test_bad_prefix_cache_settings_are_refused(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        PrefixCache(**kwargs)
