"""TrajectoryConfig: decoding settings and quality thresholds, validated on construction.

Why strict: the public original silently turned ``temperature=0`` into 0.7 and had an entropy
threshold (2.5 over a top-10 entropy capped at ln 10 ≈ 2.30) that could never fire. Here
``temperature=0`` means greedy decoding, and a threshold that no value can cross is an error
(the vocabulary-dependent part is checked by :meth:`TrajectoryConfig.check_against_vocab`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from cert.trajectory.errors import ConfigError

__all__ = ["TrajectoryConfig"]

_MAX_NEW_TOKENS_LIMIT = 8192
_MAX_PROMPT_CHARS_LIMIT = 1_000_000
_MAX_PROMPT_TOKENS_LIMIT = 131_072


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(
            f"{name} must be a number, got {value!r} ({type(value).__name__})",
            context={"field": name, "value": repr(value)},
        )
    number = float(value)
    if not math.isfinite(number):
        raise ConfigError(
            f"{name} must be finite, got {value!r}", context={"field": name, "value": repr(value)}
        )
    return number


def _integer(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(
            f"{name} must be an integer, got {value!r} ({type(value).__name__})",
            context={"field": name, "value": repr(value)},
        )
    if not low <= value <= high:
        raise ConfigError(
            f"{name} must be in [{low}, {high}], got {value}",
            context={"field": name, "value": value},
        )
    return value


def _in_range(
    name: str, value: float, low: float, high: float, *, low_open: bool, high_open: bool
) -> None:
    below = value <= low if low_open else value < low
    above = value >= high if high_open else value > high
    if below or above:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        raise ConfigError(
            f"{name} must be in {left}{low}, {high}{right}, got {value}",
            context={"field": name, "value": value},
        )


@dataclass(frozen=True)
class TrajectoryConfig:
    """How to decode and which per-response signals fail the quality check.

    Decoding: ``temperature == 0`` is greedy (deterministic, cacheable); ``temperature > 0``
    samples with ``top_p`` nucleus filtering and an optional ``seed``. The signals are always
    computed from the raw logits, whatever the decoding.

    Quality check (a response fails when any of these is exceeded):
    ``max_perplexity`` (exp of the mean negative log-likelihood of the emitted tokens),
    ``max_mean_entropy`` (mean full-vocabulary entropy in nats),
    ``max_low_prob_fraction`` (share of tokens whose probability was below ``low_prob_threshold``),
    ``min_content_chars`` (letters or digits the response must hold: a lone "." can be a very
    confident answer that says nothing; 0 turns the rule off).
    """

    max_new_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    top_k: int = 10
    low_prob_threshold: float = 0.01
    max_perplexity: float = 50.0
    max_mean_entropy: float = 3.0
    max_low_prob_fraction: float = 0.5
    min_content_chars: int = 1
    max_prompt_chars: int = 10_000
    max_prompt_tokens: int = 2048

    def __post_init__(self) -> None:
        _integer("max_new_tokens", self.max_new_tokens, 1, _MAX_NEW_TOKENS_LIMIT)
        temperature = _number("temperature", self.temperature)
        _in_range("temperature", temperature, 0.0, 100.0, low_open=False, high_open=False)
        top_p = _number("top_p", self.top_p)
        _in_range("top_p", top_p, 0.0, 1.0, low_open=True, high_open=False)
        if self.seed is not None:
            _integer("seed", self.seed, 0, 2**63 - 1)
        _integer("top_k", self.top_k, 2, 1_000_000)
        low_prob = _number("low_prob_threshold", self.low_prob_threshold)
        _in_range("low_prob_threshold", low_prob, 0.0, 1.0, low_open=True, high_open=True)
        max_ppl = _number("max_perplexity", self.max_perplexity)
        # Perplexity is >= 1 by construction, so a limit <= 1 fails every response.
        _in_range("max_perplexity", max_ppl, 1.0, math.inf, low_open=True, high_open=True)
        max_entropy = _number("max_mean_entropy", self.max_mean_entropy)
        _in_range("max_mean_entropy", max_entropy, 0.0, math.inf, low_open=True, high_open=True)
        fraction = _number("max_low_prob_fraction", self.max_low_prob_fraction)
        # A fraction can never exceed 1, so a limit of 1 or more could never fire.
        _in_range("max_low_prob_fraction", fraction, 0.0, 1.0, low_open=False, high_open=True)
        _integer("min_content_chars", self.min_content_chars, 0, _MAX_PROMPT_CHARS_LIMIT)
        _integer("max_prompt_chars", self.max_prompt_chars, 1, _MAX_PROMPT_CHARS_LIMIT)
        _integer("max_prompt_tokens", self.max_prompt_tokens, 1, _MAX_PROMPT_TOKENS_LIMIT)

    @property
    def greedy(self) -> bool:
        """True when decoding is deterministic, which is what makes a result cacheable."""
        return self.temperature == 0.0

    def check_against_vocab(self, vocab_size: int) -> None:
        """Reject thresholds that cannot be crossed with this vocabulary.

        The entropy of a distribution over V tokens is at most ln V, so ``max_mean_entropy >=
        ln V`` would make the entropy check unable to fail (the original's bug, in general form).
        """
        ceiling = math.log(vocab_size)
        if self.max_mean_entropy >= ceiling:
            raise ConfigError(
                f"max_mean_entropy={self.max_mean_entropy} can never be exceeded: the entropy "
                f"over a vocabulary of {vocab_size} tokens is at most ln {vocab_size} = "
                f"{ceiling:.4f} nats",
                context={"field": "max_mean_entropy", "value": self.max_mean_entropy},
            )
        if self.top_k > vocab_size:
            raise ConfigError(
                f"top_k={self.top_k} exceeds the vocabulary size {vocab_size}",
                context={"field": "top_k", "value": self.top_k},
            )

    def decoding(self) -> dict[str, Any]:
        """The decoding actually used, recorded in every result."""
        if self.greedy:
            return {"strategy": "greedy", "temperature": 0.0}
        return {
            "strategy": "sample",
            "temperature": float(self.temperature),
            "top_p": float(self.top_p),
            "seed": self.seed,
        }

    def fingerprint(self) -> str:
        """A stable text form of every field, used in cache keys."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> TrajectoryConfig:
        """Build from a mapping (a parsed YAML/JSON file), naming any unknown key."""
        if not isinstance(values, dict):
            raise ConfigError(
                f"config must be a mapping, got {type(values).__name__}",
                context={"field": "config", "value": repr(values)[:200]},
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"unknown config key(s): {', '.join(map(str, unknown))}",
                context={"field": unknown[0], "value": repr(values[unknown[0]])[:200]},
            )
        return cls(**values)
