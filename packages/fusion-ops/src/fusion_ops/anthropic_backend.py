"""A :class:`~fusion_ops.backends.CompletionBackend` that calls Claude through the official SDK.

Needs the extra ``fusion-ops[anthropic]``. One ``messages.create`` per completion with a single
user message; the token counts are the ones the API reports in ``response.usage`` (input, output,
cache read, cache write), taken as they are. Latency is wall-clock time around the SDK call, so it
includes the SDK's own retries and their back-off: what a user of the model waits.

The SDK's retries (``max_retries``, with its back-off and ``retry-after`` handling) are the only
retry layer: this class never repeats a call. After the SDK gives up, a transient failure (HTTP
408/409/429/5xx/529, timeout, connection error) becomes a :class:`~fusion_ops.errors.BackendError`
(a failed sample); a request the API refuses (any other 4xx: bad model, bad key, malformed
request) and anything unexpected become :class:`~fusion_ops.errors.BackendRequestError`, which
stops a collection run. ``ANTHROPIC_BASE_URL`` and ``ANTHROPIC_API_KEY`` are read by the SDK when
``base_url`` / ``api_key`` are not passed.
"""

from __future__ import annotations

import time
from typing import Any

from fusion_ops import _validate
from fusion_ops.backends import Completion
from fusion_ops.errors import BackendError, BackendRequestError

__all__ = ["AnthropicBackend"]

_TRANSIENT_STATUS = frozenset({408, 409, 429})


def _count(usage: Any, field: str) -> int:
    value = getattr(usage, field, None)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BackendRequestError(f"response usage.{field} must be an integer >= 0, got {value!r}")
    return value


def _cache_count(usage: Any, field: str) -> int | None:
    """Cache counts are absent when the request used no prompt caching."""
    return None if getattr(usage, field, None) is None else _count(usage, field)


class AnthropicBackend:
    """Claude via ``anthropic.Anthropic().messages.create`` (thread-safe: one shared client)."""

    tokenizer = "anthropic (usage reported by the API)"

    def __init__(
        self,
        model: str,
        *,
        max_tokens: int = 1024,
        max_retries: int = 2,
        timeout_s: float = 120.0,
        temperature: float | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        client: Any | None = None,
    ) -> None:
        try:
            import anthropic
        except ImportError as exc:  # the extra is not installed
            raise BackendRequestError(
                "the anthropic backend needs the SDK: pip install 'fusion-ops[anthropic]'"
            ) from exc
        self._sdk = anthropic
        self.model = _validate.text("model", model, max_chars=200)
        self.max_output_tokens = _validate.integer("max_tokens", max_tokens, minimum=1)
        self.max_retries = _validate.integer("max_retries", max_retries, minimum=0, maximum=10)
        timeout = _validate.finite_number("timeout_s", timeout_s, minimum=0, exclusive_minimum=True)
        self.temperature = (
            None
            if temperature is None
            else _validate.finite_number("temperature", temperature, minimum=0, maximum=1)
        )
        if client is None:
            client = anthropic.Anthropic(
                api_key=api_key, base_url=base_url, max_retries=self.max_retries, timeout=timeout
            )
        else:  # a client passed in brings its own retry policy; report that one
            self.max_retries = getattr(client, "max_retries", self.max_retries)
        self.client = client
        self.name = f"anthropic/{self.model}"

    def complete(self, prompt: str, *, run: int) -> Completion:
        """One call; ``run`` is not sent (the model sees the same request every run)."""
        _validate.text("prompt", prompt, max_chars=1_000_000)
        _validate.integer("run", run, minimum=0)
        extra: dict[str, Any] = {}
        if self.temperature is not None:
            extra["temperature"] = self.temperature
        sdk = self._sdk
        start = time.perf_counter()
        try:
            message = self.client.messages.create(
                model=self.model,
                max_tokens=self.max_output_tokens,
                messages=[{"role": "user", "content": prompt}],
                **extra,
            )
        except sdk.APIStatusError as exc:
            status = exc.status_code
            detail = f"HTTP {status} from the Messages API: {str(exc.message)[:200]}"
            if status in _TRANSIENT_STATUS or status >= 500:
                raise BackendError(f"{detail} (after {self.max_retries} SDK retries)") from exc
            raise BackendRequestError(detail) from exc
        except sdk.APIConnectionError as exc:  # includes APITimeoutError
            raise BackendError(
                f"{type(exc).__name__}: {exc} (after {self.max_retries} SDK retries)"
            ) from exc
        except Exception as exc:  # credentials, response validation, ...: not transient
            raise BackendRequestError(f"{type(exc).__name__}: {str(exc)[:200]}") from exc
        latency_ms = (time.perf_counter() - start) * 1000.0
        usage = getattr(message, "usage", None)
        if usage is None:
            raise BackendRequestError("the Messages API response has no usage")
        text = "".join(
            block.text for block in message.content if getattr(block, "type", None) == "text"
        )
        return Completion(
            text=text,
            input_tokens=_count(usage, "input_tokens"),
            output_tokens=_count(usage, "output_tokens"),
            latency_ms=round(latency_ms, 3),
            cache_read_input_tokens=_cache_count(usage, "cache_read_input_tokens"),
            cache_creation_input_tokens=_cache_count(usage, "cache_creation_input_tokens"),
        )
