"""Result dataclasses: per-token signals and the per-response verdict, JSON round-trippable."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from cert.trajectory.config import TrajectoryConfig
from cert.trajectory.signals import Summary

__all__ = ["TokenSignal", "TrajectoryResult", "quality_failures"]

Mode = Literal["generate", "score"]


@dataclass(frozen=True)
class TokenSignal:
    """Signals of one emitted (or teacher-forced) token."""

    position: int
    token_id: int
    token: str
    log_prob: float
    surprise: float
    entropy: float
    topk_negentropy: float
    margin: float

    @property
    def probability(self) -> float:
        return math.exp(self.log_prob)


@dataclass(frozen=True)
class TrajectoryResult:
    """Everything measured about one response, and whether it passed the quality check."""

    prompt: str
    text: str
    mode: Mode
    tokens: list[TokenSignal]
    perplexity: float | None
    mean_entropy: float | None
    max_entropy: float | None
    cumulative_surprise: float
    low_prob_count: int
    low_prob_fraction: float | None
    passed_quality_check: bool
    failed_checks: list[str]
    finish_reason: Literal["eos", "length", "timeout", "scored"]
    truncated: bool
    decoding: dict[str, Any]
    thresholds: dict[str, float]
    model_id: str
    device: str
    cpu_fallback: bool = False
    cached: bool = False
    elapsed_s: float = 0.0
    version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    # Names of the seed API ("avg_*"), kept so that seed examples work unchanged.
    @property
    def avg_perplexity(self) -> float | None:
        return self.perplexity

    @property
    def avg_entropy(self) -> float | None:
        return self.mean_entropy

    @property
    def token_count(self) -> int:
        return len(self.tokens)

    def with_flags(self, **changes: Any) -> TrajectoryResult:
        """A copy with some fields changed (e.g. ``cached=True`` for a cache hit)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrajectoryResult:
        values = dict(data)
        values["tokens"] = [TokenSignal(**token) for token in values["tokens"]]
        return cls(**values)


def quality_failures(summary: Summary, config: TrajectoryConfig, text: str) -> list[str]:
    """Names of the checks a response fails; an empty response fails ``no_tokens``, and one
    with fewer than ``min_content_chars`` letters or digits (a lone ".") fails ``min_content``."""
    if summary.token_count == 0:
        return ["no_tokens"]
    failures = []
    if sum(ch.isalnum() for ch in text) < config.min_content_chars:
        failures.append("min_content")
    if summary.perplexity is not None and summary.perplexity > config.max_perplexity:
        failures.append("perplexity")
    if summary.mean_entropy is not None and summary.mean_entropy > config.max_mean_entropy:
        failures.append("mean_entropy")
    if (
        summary.low_prob_fraction is not None
        and summary.low_prob_fraction > config.max_low_prob_fraction
    ):
        failures.append("low_prob_fraction")
    return failures
