"""Completion backends: the small protocol ``fusion-budget collect`` runs scenarios against.

A backend takes a prompt and returns a :class:`Completion` (text, token usage, latency). To plug in
a real LLM client, write a class with a ``name`` attribute and a ``complete(prompt, *, run)``
method that calls the model, reads the provider's reported usage (prompt/completion tokens) and
measures wall-clock latency around the call; pass it to :func:`fusion_ops.collect.collect_report`
or name it on the command line as ``--backend module:Class`` (:mod:`fusion_ops.loader`).
A backend raises :class:`~fusion_ops.errors.BackendRequestError` when the request itself is wrong
(the run stops) and any other exception for a transient failure (a failed sample).
:class:`fusion_ops.anthropic_backend.AnthropicBackend` calls Claude through the official SDK.

:class:`OfflineBackend` is deterministic and needs no network: it tokenizes the prompt for real
(:mod:`fusion_ops.tokenizer`), composes a structured answer whose length follows the prompt's
structure (each overlay section asks for a matching part of the answer), and models latency as
fixed overhead + prefill cost per input token + decode cost per output token, with a seeded
log-normal jitter. The latency is modelled, not measured; the token counts are real counts of the
texts it builds.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from fusion_ops import _validate
from fusion_ops.errors import BackendError
from fusion_ops.tokenizer import TOKENIZER_NAME, count_tokens

__all__ = ["Completion", "CompletionBackend", "OfflineBackend"]


@dataclass(frozen=True)
class Completion:
    """One completion: the text and what it cost (cache counts: None when not reported)."""

    text: str
    input_tokens: int
    output_tokens: int
    latency_ms: float
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None


@runtime_checkable
class CompletionBackend(Protocol):
    """Prompt in, completion out. ``run`` is the repetition index (real clients may ignore it)."""

    name: str

    def complete(self, prompt: str, *, run: int) -> Completion: ...


_SECTION = re.compile(r"^##\s+(.+?)\s*$", re.MULTILINE)
_WORD = re.compile(r"[A-Za-z][A-Za-z\-]{3,}")

_OPENERS = (
    "Start by confirming",
    "Next, make explicit",
    "Then verify",
    "Keep in view",
    "Finally, record",
)


class OfflineBackend:
    """Deterministic stand-in for an LLM: same (seed, prompt, run) → same completion."""

    tokenizer = TOKENIZER_NAME

    def __init__(
        self,
        *,
        seed: int = 0,
        overhead_ms: float = 180.0,
        prefill_ms_per_token: float = 0.08,
        decode_ms_per_token: float = 11.0,
        latency_jitter_sigma: float = 0.10,
        failure_rate: float = 0.0,
    ) -> None:
        self.seed = _validate.integer("seed", seed)
        self.overhead_ms = _validate.finite_number("overhead_ms", overhead_ms, minimum=0)
        self.prefill_ms_per_token = _validate.finite_number(
            "prefill_ms_per_token", prefill_ms_per_token, minimum=0
        )
        self.decode_ms_per_token = _validate.finite_number(
            "decode_ms_per_token", decode_ms_per_token, minimum=0
        )
        self.latency_jitter_sigma = _validate.finite_number(
            "latency_jitter_sigma", latency_jitter_sigma, minimum=0, maximum=2
        )
        self.failure_rate = _validate.finite_number(
            "failure_rate", failure_rate, minimum=0, maximum=1
        )
        self.name = f"offline/{TOKENIZER_NAME}/seed={self.seed}"

    def _rng(self, prompt: str, run: int) -> random.Random:
        digest = hashlib.sha256(f"{self.seed}\x00{run}\x00{prompt}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def _answer(self, prompt: str, rng: random.Random) -> str:
        """An answer with one part per prompt section, built from the section's own words."""
        sections = _SECTION.split(prompt)
        # split() gives [preamble, title1, body1, title2, body2, ...]
        parts: list[tuple[str, str]] = [("Task", sections[0])]
        parts += list(zip(sections[1::2], sections[2::2], strict=True))
        lines: list[str] = []
        for title, body in parts:
            words = _WORD.findall(body) or _WORD.findall(title) or ["the", "request"]
            sentences = 1 + rng.randint(0, 2) + min(len(words) // 40, 3)
            lines.append(f"{title.strip()}:")
            for i in range(sentences):
                picked = [words[rng.randrange(len(words))] for _ in range(6 + rng.randint(0, 6))]
                lines.append(f"- {_OPENERS[i % len(_OPENERS)]} {' '.join(picked).lower()}.")
        return "\n".join(lines)

    def complete(self, prompt: str, *, run: int) -> Completion:
        _validate.text("prompt", prompt, max_chars=1_000_000)
        _validate.integer("run", run, minimum=0)
        rng = self._rng(prompt, run)
        if rng.random() < self.failure_rate:
            raise BackendError(f"offline backend injected a failure (run={run})")
        text = self._answer(prompt, rng)
        input_tokens = count_tokens(prompt)
        output_tokens = count_tokens(text)
        jitter = math.exp(rng.gauss(0.0, self.latency_jitter_sigma))
        latency = (
            self.overhead_ms
            + self.prefill_ms_per_token * input_tokens
            + self.decode_ms_per_token * output_tokens
        ) * jitter
        return Completion(text, input_tokens, output_tokens, round(latency, 3))
