"""The math: per-step signals from raw logits, and per-response summaries.

Every per-step quantity is derived from the model's raw next-token logits over the full
vocabulary (never from temperature- or top-p-warped scores), so the numbers describe the model,
not the decoding. Summaries are plain Python so they can be checked without torch.

Definitions (natural logarithms throughout):

- log-probability ``log p(x_t)`` of the emitted token, surprise ``-log p(x_t)``;
- entropy ``H = -Σ_v p_v log p_v`` over the whole vocabulary (at most ``ln V``);
- top-k negentropy ``(ln k - H_k) / ln k`` where ``H_k`` is the entropy of the k most likely
  tokens renormalised: 0 when they are equally likely, 1 when one of them has all the mass;
- margin ``p_1 - p_2`` between the two most likely tokens;
- perplexity ``exp(mean surprise)`` — the geometric, not arithmetic, mean of ``1/p``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = [
    "StepStatistics",
    "Summary",
    "distribution_core",
    "step_statistics",
    "summarize",
    "topk_signals",
]


@dataclass(frozen=True)
class StepStatistics:
    """Signals of next-token distributions, one row per distribution (tensors of shape [rows])."""

    log_probs: torch.Tensor  # [rows, vocab]
    entropy: torch.Tensor
    topk_negentropy: torch.Tensor
    margin: torch.Tensor


def distribution_core(
    logits: torch.Tensor, top_k: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The vocabulary-wide part: log-probabilities, entropy and top-k log-probabilities.

    Split out so that generation does only this per step (a handful of kernels: log-softmax is
    several times faster than logsumexp on CPU) and derives the rest for all steps at the end.
    ``-inf`` logits count as probability 0 (their ``p log p`` term is 0, not NaN).
    """
    import torch

    # half-precision logits are widened; float64 (used by the reference tests) is kept
    wide = logits if logits.dtype in (torch.float32, torch.float64) else logits.float()
    log_probs = torch.log_softmax(wide, dim=-1)
    finite = log_probs.clamp_min(torch.finfo(log_probs.dtype).min)
    # clamp: rounding can dip below 0; "+ 0.0" turns a -0.0 into 0.0 for readable output
    entropy = (-(log_probs.exp() * finite).sum(dim=-1)).clamp_min(0.0) + 0.0
    top = torch.topk(log_probs, min(top_k, log_probs.shape[-1]), dim=-1).values
    return log_probs, entropy, top


def topk_signals(top_log_probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k negentropy and margin p1 - p2 from sorted top-k log-probabilities (any shape)."""
    import torch

    k = top_log_probs.shape[-1]
    renormalised = torch.log_softmax(top_log_probs, dim=-1)
    finite = renormalised.clamp_min(torch.finfo(renormalised.dtype).min)
    top_entropy = -(renormalised.exp() * finite).sum(dim=-1)
    negentropy = (math.log(k) - top_entropy) / math.log(k)
    margin = top_log_probs[..., 0].exp() - top_log_probs[..., 1].exp()
    return negentropy, margin


def step_statistics(logits: torch.Tensor, top_k: int) -> StepStatistics:
    """All signals of next-token distributions given raw logits of shape [rows, vocab]."""
    log_probs, entropy, top = distribution_core(logits, top_k)
    negentropy, margin = topk_signals(top)
    return StepStatistics(
        log_probs=log_probs, entropy=entropy, topk_negentropy=negentropy, margin=margin
    )


@dataclass(frozen=True)
class Summary:
    """Per-response aggregates; None when the response has no tokens."""

    token_count: int
    perplexity: float | None
    mean_entropy: float | None
    max_entropy: float | None
    cumulative_surprise: float
    low_prob_count: int
    low_prob_fraction: float | None


def summarize(
    log_probs: Sequence[float], entropies: Sequence[float], low_prob_threshold: float
) -> Summary:
    """Aggregate per-token log-probabilities and entropies of one response."""
    if len(log_probs) != len(entropies):
        raise ValueError(
            f"log_probs and entropies differ in length: {len(log_probs)} != {len(entropies)}"
        )
    count = len(log_probs)
    if count == 0:
        return Summary(0, None, None, None, 0.0, 0, None)
    surprise = -math.fsum(log_probs)
    log_threshold = math.log(low_prob_threshold)
    low = sum(1 for lp in log_probs if lp < log_threshold)
    mean_surprise = surprise / count
    perplexity = math.exp(mean_surprise) if mean_surprise < 709.0 else math.inf
    return Summary(
        token_count=count,
        perplexity=perplexity,
        mean_entropy=math.fsum(entropies) / count,
        max_entropy=max(entropies),
        cumulative_surprise=surprise,
        low_prob_count=low,
        low_prob_fraction=low / count,
    )
