"""Properties of the signal math against closed forms and plain-Python references."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cert.trajectory.signals import step_statistics, summarize

logit_rows = st.lists(
    st.floats(min_value=-30, max_value=30, allow_nan=False), min_size=2, max_size=40
)


def _reference_entropy(row: list[float]) -> float:
    top = max(row)
    weights = [math.exp(v - top) for v in row]
    total = math.fsum(weights)
    probs = [w / total for w in weights]
    return -math.fsum(p * math.log(p) for p in probs if p > 0)


@settings(max_examples=60, deadline=None)
@given(logit_rows)
def test_entropy_matches_reference_and_stays_within_zero_and_ln_v(row: list[float]) -> None:
    stats = step_statistics(torch.tensor([row], dtype=torch.float64), top_k=5)
    entropy = stats.entropy.item()
    assert entropy == pytest.approx(_reference_entropy(row), abs=1e-6)
    assert 0.0 <= entropy <= math.log(len(row)) + 1e-9


@settings(max_examples=60, deadline=None)
@given(logit_rows, st.floats(min_value=-100, max_value=100, allow_nan=False))
def test_signals_do_not_change_when_all_logits_shift(row: list[float], shift: float) -> None:
    base = step_statistics(torch.tensor([row], dtype=torch.float64), top_k=4)
    moved = step_statistics(torch.tensor([row], dtype=torch.float64) + shift, top_k=4)
    for name in ("entropy", "topk_negentropy", "margin"):
        assert getattr(moved, name).item() == pytest.approx(getattr(base, name).item(), abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(logit_rows, st.integers(min_value=2, max_value=50))
def test_margin_and_negentropy_lie_in_unit_interval(row: list[float], k: int) -> None:
    stats = step_statistics(torch.tensor([row]), top_k=k)
    assert -1e-6 <= stats.margin.item() <= 1 + 1e-6
    assert -1e-5 <= stats.topk_negentropy.item() <= 1 + 1e-5


def test_uniform_and_one_hot_rows_have_closed_form_signals() -> None:
    uniform = torch.zeros(1, 8)
    one_hot = torch.full((1, 8), -math.inf)
    one_hot[0, 3] = 0.0
    stats = step_statistics(torch.cat([uniform, one_hot]), top_k=4)
    assert stats.entropy.tolist() == pytest.approx([math.log(8), 0.0], abs=1e-6)
    assert stats.margin.tolist() == pytest.approx([0.0, 1.0], abs=1e-7)
    assert stats.topk_negentropy.tolist() == pytest.approx([0.0, 1.0], abs=1e-6)
    assert not torch.isnan(stats.entropy).any()


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.floats(min_value=-20, max_value=0, allow_nan=False), min_size=1, max_size=60),
    st.floats(min_value=1e-4, max_value=0.9),
)
def test_summary_perplexity_is_exp_mean_surprise(log_probs: list[float], threshold: float) -> None:
    entropies = [abs(lp) / 2 for lp in log_probs]
    summary = summarize(log_probs, entropies, threshold)
    mean_surprise = -math.fsum(log_probs) / len(log_probs)
    assert summary.perplexity == pytest.approx(math.exp(mean_surprise), rel=1e-9)
    assert summary.perplexity is not None
    assert summary.perplexity >= 1.0
    # geometric mean of 1/p never exceeds the arithmetic mean the original used
    arithmetic = math.fsum(math.exp(-lp) for lp in log_probs) / len(log_probs)
    assert summary.perplexity <= arithmetic * (1 + 1e-9)
    assert summary.low_prob_count == sum(1 for lp in log_probs if math.exp(lp) < threshold)
    assert summary.cumulative_surprise == pytest.approx(-math.fsum(log_probs))
    assert summary.max_entropy == max(entropies)


def test_summary_of_nothing_has_no_perplexity() -> None:
    summary = summarize([], [], 0.01)
    assert summary.token_count == 0
    assert summary.perplexity is None
    assert summary.mean_entropy is None


def test_summary_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        summarize([-1.0], [], 0.01)


def test_a_lone_punctuation_token_fails_the_minimum_content_rule() -> None:
    from cert.trajectory.config import TrajectoryConfig
    from cert.trajectory.result import quality_failures

    confident = summarize([-0.01], [0.05], 0.01)  # one very likely, very certain token
    config = TrajectoryConfig()
    assert quality_failures(confident, config, ".") == ["min_content"]
    assert quality_failures(confident, config, " list") == []
    assert quality_failures(confident, TrajectoryConfig(min_content_chars=0), ".") == []
    assert quality_failures(confident, TrajectoryConfig(min_content_chars=8), " list") == [
        "min_content"
    ]


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3", None])
def test_min_content_chars_must_be_a_non_negative_integer(bad: object) -> None:
    from cert.trajectory.config import TrajectoryConfig
    from cert.trajectory.errors import ConfigError

    with pytest.raises(ConfigError, match="min_content_chars"):
        TrajectoryConfig(min_content_chars=bad)  # type: ignore[arg-type]
