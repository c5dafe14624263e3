"""The chat backend protocol: messages in, text and token usage out.

The orchestrator, the judge and the baseline measurer only talk to a :class:`ChatBackend`, so a
local model can stand in for the Anthropic API. A backend implements one coroutine,
:meth:`ChatBackend.complete`, and names its default model; that is the whole contract.

Structured output: when ``json_schema`` is given, the backend should make the model answer with a
JSON object that follows the schema and return it *as JSON text* in :attr:`ChatResult.text`
(:class:`~cert.coordination.client.AnthropicClientWithResilience` forces a tool call for this).
A backend that cannot constrain its output may ignore the schema: callers parse the text and
count a parse failure; they never invent a value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    """One turn of a conversation."""

    role: Role
    content: str


@dataclass(frozen=True)
class TokenUsage:
    """Tokens billed for one request, as reported by the backend."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    @property
    def prompt_tokens(self) -> int:
        """All tokens of the prompt, cached or not (what long-prompt price tiers look at)."""
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens


@dataclass(frozen=True)
class ChatResult:
    """What a backend returns for one request."""

    text: str
    usage: TokenUsage
    model: str
    latency_s: float = 0.0
    stop_reason: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class ChatBackend(Protocol):
    """Anything that turns a conversation into a reply.

    ``default_model`` identifies the model behind the backend; it is part of every cache key, so
    two backends serving different models never share baselines. ``model`` in :meth:`complete`
    overrides it per call (the judge uses this); a backend serving a single model raises
    ``CoordinationInputError`` for any other id. ``agent`` labels the caller for cost attribution.
    """

    default_model: str

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
        """Return the model's reply to ``messages``."""
        ...
