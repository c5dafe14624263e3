"""Where answers come from, and how their tokens get monitored.

Two backends, one contract (:class:`GenerationBackend`):

- :class:`LocalModelBackend`: a local transformers model generates and cert-trajectory measures
  every emitted token in the same pass (the offline default), micro-batched by the model's
  :class:`~resontinex.pipeline.worker.ModelWorker`;
- :class:`ChatGenerationBackend`: any cert-coordination ``ChatBackend`` (the Anthropic API in
  production) writes the answer, and a local model teacher-forces it to measure its tokens,
  because an API does not return per-token logits.

:class:`LocalChatBackend` goes the other way: it exposes the local model as a ``ChatBackend``
so cert-coordination's judge and orchestrator can run offline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from cert.coordination.backend import ChatBackend, ChatMessage, ChatResult, TokenUsage
from cert.trajectory import TrajectoryConfig, TrajectoryResult
from resontinex.pipeline.worker import ModelWorker, WorkerLogitModel


@dataclass(frozen=True)
class Generation:
    """One answer with its token-level trajectory."""

    text: str
    trajectory: TrajectoryResult
    model_id: str
    vocab_size: int
    input_tokens: int
    output_tokens: int
    batch_size: int = 1  # generations that shared this one's forward passes
    queued_s: float = 0.0  # time waiting for the model worker


#: The name earlier releases gave the local model; it is now its worker, the model's one owner.
LocalModel = ModelWorker


class GenerationBackend(Protocol):
    """Prompt in, monitored answer out. ``local`` is the local model that measures tokens."""

    local: ModelWorker

    @property
    def model_id(self) -> str: ...

    async def generate(self, prompt: str, *, max_new_tokens: int) -> Generation: ...

    def fingerprint_model(self) -> Any:
        """The serving model as an hbt-core model (for behavioural fingerprints)."""
        ...


class LocalModelBackend:
    """Generate with a local model and monitor the same pass (greedy unless configured)."""

    def __init__(self, model: ModelWorker, config: TrajectoryConfig | None = None) -> None:
        self.local = model
        self.config = config

    @property
    def model_id(self) -> str:
        return self.local.path

    async def generate(self, prompt: str, *, max_new_tokens: int) -> Generation:
        if self.config is None:
            config = self.local.generation_config(max_new_tokens)
        else:
            config = replace(self.config, max_new_tokens=max_new_tokens)
        served = await self.local.generate(prompt, config)
        result = served.result
        return Generation(
            text=result.text,
            trajectory=result,
            model_id=self.model_id,
            vocab_size=self.local.vocab_size,
            input_tokens=self.local.count_tokens(prompt),
            output_tokens=result.token_count,
            batch_size=served.batch_size,
            queued_s=served.queued_s,
        )

    def fingerprint_model(self) -> WorkerLogitModel:
        return self.local.logit_model(self.model_id)


class ChatGenerationBackend:
    """Answers from a ChatBackend (e.g. the Anthropic API), scored token by token locally."""

    def __init__(self, chat: ChatBackend, scorer: ModelWorker) -> None:
        self.chat = chat
        self.local = scorer

    @property
    def model_id(self) -> str:
        return self.chat.default_model

    async def generate(self, prompt: str, *, max_new_tokens: int) -> Generation:
        reply = await self.chat.complete([ChatMessage("user", prompt)], max_tokens=max_new_tokens)
        trajectory = await self.local.score(prompt, reply.text or " ")
        return Generation(
            text=reply.text,
            trajectory=trajectory,
            model_id=reply.model,
            vocab_size=self.local.vocab_size,
            input_tokens=reply.usage.input_tokens,
            output_tokens=reply.usage.output_tokens,
        )

    def fingerprint_model(self) -> Any:
        from hbt_core.models import CallableTextModel

        def ask(prompt: bytes, max_new_tokens: int, seed: int) -> str:
            # hbt-core calls text models from a worker thread, so a private event loop is safe.
            message = ChatMessage("user", prompt.decode("utf-8", "replace"))
            return asyncio.run(self.chat.complete([message], max_tokens=max_new_tokens)).text

        return CallableTextModel(ask, name=self.model_id)


class LocalChatBackend:
    """The local model behind cert-coordination's ``ChatBackend`` protocol.

    A tiny local model cannot follow a JSON schema; the judge then fails to parse its reply and
    returns None (counted), which is the honest outcome. With a capable local model the same
    code path yields real scores.
    """

    def __init__(self, model: ModelWorker) -> None:
        self.local = model
        self.default_model = f"local:{model.path}"

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        system: str | None = None,
        max_tokens: int = 1024,
        model: str | None = None,
        agent: str = "default",
        json_schema: Mapping[str, Any] | None = None,
    ) -> ChatResult:
        parts = ([system] if system else []) + [m.content for m in messages]
        prompt = "\n\n".join(parts)
        config = self.local.generation_config(min(max_tokens, 256))
        began = time.perf_counter()
        result = (await self.local.generate(prompt, config)).result
        return ChatResult(
            text=result.text,
            usage=TokenUsage(self.local.count_tokens(prompt), result.token_count),
            model=self.default_model,
            latency_s=time.perf_counter() - began,
            stop_reason=result.finish_reason,
        )
