"""A resilient Anthropic Messages API client that implements :class:`ChatBackend`.

Layers, in the order a request meets them:

1. **cost cap** (:class:`~cert.coordination.pricing.CostLedger`): the worst case of the request is
   reserved under the rolling-hour cap before anything is sent;
2. **rate limiter** (:class:`~cert.coordination.ratelimit.SlidingWindowRateLimiter`), shared by all
   tasks using this client. It is charged *tokens*: the SDK's ``count_tokens`` endpoint with
   ``token_counting="api"``, otherwise a :class:`~cert.coordination.tokens.TokenEstimator`
   calibrated on the usage the API reports (the byte bound is only for the cost cap);
3. **circuit breaker** (cert-runtime), which counts only server-side failures (5xx, 529, 408) and
   timeouts/connection errors, never 4xx client errors or 429;
4. **the SDK** (``anthropic.AsyncAnthropic``) with its own retries: the *only* retry layer, so one
   call makes at most ``max_retries + 1`` HTTP attempts.

Usage (and so cost) comes from the response's ``usage``; ``anthropic-ratelimit-*`` headers feed the
rate limiter.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, TypeVar

import anthropic
from prometheus_client import CollectorRegistry

from cert.coordination._validate import check_choice, check_float, check_int, check_text
from cert.coordination.backend import ChatMessage, ChatResult, TokenUsage
from cert.coordination.errors import (
    APICallError,
    CoordinationInputError,
    CostCapExceededError,
)
from cert.coordination.pricing import CostLedger, CostSummary, PriceTable
from cert.coordination.ratelimit import SlidingWindowRateLimiter
from cert.coordination.telemetry import CoordinationTelemetry
from cert.coordination.tokens import TokenEstimator
from cert.runtime.breaker import CircuitBreaker, CircuitState
from cert.runtime.errors import CircuitOpenError
from cert.runtime.health import CheckResult, HealthStatus
from cert.runtime.logging import get_logger

DEFAULT_MODEL = "claude-sonnet-5"
"""Default agent model: Claude Sonnet 5 (released 2026-06-30, $2/$10 per MTok as of 2026-11)."""

STRUCTURED_MODES = ("output_config", "tool")
TOKEN_COUNTING_MODES = ("api", "estimate")
_TOOL_NAME = "submit_structured_answer"
_PER_MESSAGE_OVERHEAD = 8
_log = get_logger("cert.coordination.client")
T = TypeVar("T")


def is_server_failure(exc: BaseException) -> bool:
    """What the breaker counts: 5xx/529/408 answers, timeouts and connection failures."""
    if isinstance(exc, anthropic.APIStatusError):
        return exc.status_code >= 500 or exc.status_code == 408
    return isinstance(exc, anthropic.APIConnectionError)


def prompt_token_upper_bound(
    messages: Sequence[ChatMessage], system: str | None, schema: Mapping[str, Any] | None
) -> int:
    """An upper bound of the prompt's tokens: its UTF-8 byte count plus per-message framing.

    Claude's tokenizer never yields more tokens than bytes for plain text, so this is safe for the
    pre-request cost check (and pessimistic, roughly 4x for English prose): never use it for rate
    limits, which must be charged real tokens.
    """
    size = sum(len(m.content.encode("utf-8")) + _PER_MESSAGE_OVERHEAD for m in messages)
    if system:
        size += len(system.encode("utf-8")) + _PER_MESSAGE_OVERHEAD
    if schema is not None:
        size += len(json.dumps(schema).encode("utf-8")) + 64
    return size


def _to_usage(usage: Any) -> TokenUsage:
    return TokenUsage(
        input_tokens=int(getattr(usage, "input_tokens", 0) or 0),
        output_tokens=int(getattr(usage, "output_tokens", 0) or 0),
        cache_creation_input_tokens=int(getattr(usage, "cache_creation_input_tokens", 0) or 0),
        cache_read_input_tokens=int(getattr(usage, "cache_read_input_tokens", 0) or 0),
    )


def _api_error(exc: BaseException) -> APICallError:
    if isinstance(exc, anthropic.APIStatusError):
        kind = exc.type or "api_error"
        retry_after = exc.response.headers.get("retry-after")
        try:
            wait = float(retry_after) if retry_after is not None else None
        except ValueError:
            wait = None
        return APICallError(
            f"Messages API returned HTTP {exc.status_code} ({kind}): {exc.api_message or exc}",
            status_code=exc.status_code,
            error_type=str(kind),
            recoverable=is_server_failure(exc) or exc.status_code == 429,
            retry_after=wait,
            context={"request_id": exc.request_id},
        )
    failure = "timeout" if isinstance(exc, anthropic.APITimeoutError) else "connection_error"
    return APICallError(
        f"Messages API call failed: {failure}: {exc}",
        status_code=None,
        error_type=failure,
        recoverable=True,
    )


@dataclass
class ClientStats:
    """Counts kept by the client (the same numbers also go to Prometheus)."""

    calls_ok: int = 0
    calls_failed: int = 0
    http_attempts: int = 0
    rate_limit_wait_s: float = 0.0
    token_count_calls: int = 0
    token_count_fallbacks: int = 0


class AnthropicClientWithResilience:
    """Async Anthropic client with cost cap, rate limit and circuit breaker (a ChatBackend).

    ``max_cost_per_hour`` is in the price table's currency (USD); ``None`` disables the cap.
    ``structured_output`` chooses how ``json_schema`` requests are made: ``"output_config"`` (the
    API's JSON-schema output format) or ``"tool"`` (a forced tool call whose input is the answer).
    ``token_counting`` chooses how a request's input tokens are counted for the
    input-tokens-per-minute limit: ``"api"`` asks the ``count_tokens`` endpoint (one extra
    request; if it fails, the estimate is used, counted in ``stats.token_count_fallbacks``),
    ``"estimate"`` uses ``token_estimator`` (calibrated on the ``usage`` of earlier responses).
    Without an input-token limit nothing is counted.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        model: str = DEFAULT_MODEL,
        requests_per_minute: int = 50,
        input_tokens_per_minute: int | None = None,
        output_tokens_per_minute: int | None = None,
        max_cost_per_hour: float | Decimal | None = 10.0,
        max_retries: int = 2,
        timeout_s: float = 60.0,
        base_url: str | None = None,
        price_table: PriceTable | None = None,
        structured_output: Literal["output_config", "tool"] = "output_config",
        breaker: CircuitBreaker | None = None,
        failure_threshold: int = 5,
        recovery_timeout_s: float = 30.0,
        rate_limiter: SlidingWindowRateLimiter | None = None,
        token_counting: Literal["api", "estimate"] = "estimate",
        token_estimator: TokenEstimator | None = None,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.default_model = check_text("model", model, max_chars=200)
        self.max_retries = check_int("max_retries", max_retries, minimum=0, maximum=20)
        timeout = check_float("timeout_s", timeout_s, minimum=0.0, allow_minimum=False)
        self.structured_output = check_choice(
            "structured_output", structured_output, STRUCTURED_MODES
        )
        if api_key is not None and not isinstance(api_key, str):
            raise CoordinationInputError(
                f"api_key must be a string or None, got {type(api_key).__name__}",
                context={"field": "api_key"},
            )
        cap: Decimal | None = None
        if max_cost_per_hour is not None:
            if isinstance(max_cost_per_hour, Decimal):
                cap_value = float(max_cost_per_hour)
            else:
                cap_value = max_cost_per_hour
            check_float("max_cost_per_hour", cap_value, minimum=0.0, allow_minimum=False)
            cap = Decimal(str(max_cost_per_hour))
        self.prices = price_table or PriceTable.default()
        self.prices.price(self.default_model)  # an unknown default model fails here, not later
        self.ledger = CostLedger(self.prices, max_cost_per_hour=cap)
        self.rate_limiter = rate_limiter or SlidingWindowRateLimiter(
            requests_per_minute,
            input_tokens_per_minute=input_tokens_per_minute,
            output_tokens_per_minute=output_tokens_per_minute,
        )
        self.telemetry = CoordinationTelemetry(registry)
        self.breaker = breaker or CircuitBreaker(
            "anthropic-messages",
            failure_threshold=check_int(
                "failure_threshold", failure_threshold, minimum=1, maximum=1000
            ),
            recovery_timeout=check_float(
                "recovery_timeout_s", recovery_timeout_s, minimum=0.0, allow_minimum=False
            ),
            is_failure=is_server_failure,
            clock=clock,
        )
        self.telemetry.set_breaker_state(self.breaker.name, self.breaker.state)
        self.token_counting = check_choice("token_counting", token_counting, TOKEN_COUNTING_MODES)
        if token_estimator is not None and not isinstance(token_estimator, TokenEstimator):
            raise CoordinationInputError(
                f"token_estimator must be a TokenEstimator, got {type(token_estimator).__name__}",
                context={"field": "token_estimator"},
            )
        self.token_estimator = token_estimator or TokenEstimator()
        self.stats = ClientStats()
        try:
            self._sdk = anthropic.AsyncAnthropic(
                api_key=api_key, base_url=base_url, max_retries=self.max_retries, timeout=timeout
            )
        except anthropic.AnthropicError as exc:
            raise CoordinationInputError(
                f"cannot build the Anthropic client: {type(exc).__name__}",
                context={"field": "api_key"},
            ) from exc
        credentials = ("api_key", "auth_token", "credentials")
        if not any(getattr(self._sdk, name, None) for name in credentials):
            raise CoordinationInputError(
                "no Anthropic credentials: pass api_key=... or set ANTHROPIC_API_KEY",
                context={"field": "api_key"},
            )

    # ------------------------------------------------------------------ ChatBackend
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
        """Send one Messages API request through cost cap, rate limiter and breaker."""
        messages = self._checked_messages(messages)
        check_int("max_tokens", max_tokens, minimum=1, maximum=128_000)
        agent = check_text("agent", agent, max_chars=200)
        model = self.default_model if model is None else check_text("model", model, max_chars=200)
        if system is not None:
            system = check_text("system", system)
        if json_schema is not None and not isinstance(json_schema, Mapping):
            raise CoordinationInputError(
                f"json_schema must be a mapping, got {type(json_schema).__name__}",
                context={"field": "json_schema"},
            )
        prompt_bound = prompt_token_upper_bound(messages, system, json_schema)

        try:
            reservation = self.ledger.reserve(
                agent=agent, model=model, prompt_tokens=prompt_bound, max_tokens=max_tokens
            )
        except CostCapExceededError:
            self.telemetry.api_calls.labels("cost_cap").inc()
            raise
        params = self._request_params(messages, system, max_tokens, model, json_schema)
        started = time.perf_counter()
        try:
            input_tokens = await self._input_tokens(params, prompt_bound)
            waited = await self.rate_limiter.acquire(input_tokens=input_tokens)
            self.stats.rate_limit_wait_s += waited
            self.telemetry.rate_limit_wait_seconds.inc(waited)
            raw = await self.breaker.call_async(self._send, params)
            message = await raw.parse()
        except CircuitOpenError:
            self.ledger.release(reservation)
            self.telemetry.api_calls.labels("circuit_open").inc()
            raise
        except anthropic.APIError as exc:
            self.ledger.release(reservation)
            self._count_failure(exc, model, started)
            raise _api_error(exc) from exc
        except BaseException:
            self.ledger.release(reservation)
            raise
        finally:
            self.telemetry.set_breaker_state(self.breaker.name, self.breaker.state)

        latency = time.perf_counter() - started
        usage = _to_usage(message.usage)
        cost = self.ledger.settle(reservation, usage)
        self.token_estimator.observe(
            prompt_bound,
            usage.input_tokens + usage.cache_creation_input_tokens + usage.cache_read_input_tokens,
        )
        self.rate_limiter.update_from_headers(dict(raw.headers))
        self.rate_limiter.record_output_tokens(usage.output_tokens)
        attempts = 1 + int(getattr(raw, "retries_taken", 0))
        self.stats.calls_ok += 1
        self.stats.http_attempts += attempts
        self.telemetry.http_attempts.inc(attempts)
        self.telemetry.api_calls.labels("ok").inc()
        self.telemetry.request_seconds.labels(model).observe(latency)
        self.telemetry.tokens.labels("input", model).inc(usage.input_tokens)
        self.telemetry.tokens.labels("output", model).inc(usage.output_tokens)
        if cost is not None:
            self.telemetry.cost_usd.labels(agent, model).inc(float(cost))
        _log.info(
            "messages api call",
            extra={
                "agent": agent,
                "model": model,
                "latency_s": round(latency, 4),
                "http_attempts": attempts,
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "cost_usd": None if cost is None else str(cost),
            },
        )
        return ChatResult(
            text=self._reply_text(message, structured=json_schema is not None),
            usage=usage,
            model=str(message.model or model),
            latency_s=latency,
            stop_reason=message.stop_reason,
            extra={"cost_usd": cost, "http_attempts": attempts, "request_id": raw.request_id},
        )

    # ------------------------------------------------------------------ helpers
    async def _input_tokens(self, params: dict[str, Any], byte_bound: int) -> int:
        """Input tokens to charge the rate limiter (see ``token_counting``)."""
        if self.rate_limiter.input_tokens_per_minute is None:
            return 0
        if self.token_counting == "api":
            counted = await self._count_tokens_api(params)
            if counted is not None:
                return counted
        return self.token_estimator.estimate(byte_bound)

    async def _count_tokens_api(self, params: dict[str, Any]) -> int | None:
        """The ``count_tokens`` endpoint's answer, or None (logged and counted) if it fails."""
        request = {key: value for key, value in params.items() if key != "max_tokens"}
        self.stats.token_count_calls += 1
        try:
            result = await self._sdk.messages.count_tokens(**request)
            counted = result.input_tokens
        except (anthropic.APIError, AttributeError) as exc:
            failure = type(exc).__name__
        else:
            if isinstance(counted, int) and not isinstance(counted, bool) and counted >= 0:
                return counted
            failure = f"invalid input_tokens {counted!r:.40}"
        self.stats.token_count_fallbacks += 1
        _log.warning(
            "count_tokens failed; using the calibrated estimate",
            extra={"failure": failure, "model": params.get("model")},
        )
        return None

    async def _send(self, params: dict[str, Any]) -> Any:
        """One SDK call (its own retries included): the unit the breaker judges."""
        return await self._sdk.messages.with_raw_response.create(**params)

    @staticmethod
    def _checked_messages(messages: Any) -> list[ChatMessage]:
        if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
            raise CoordinationInputError(
                f"messages must be a sequence of ChatMessage, got {type(messages).__name__}",
                context={"field": "messages"},
            )
        if not messages:
            raise CoordinationInputError(
                "messages must not be empty", context={"field": "messages"}
            )
        checked = []
        for i, item in enumerate(messages):
            if not isinstance(item, ChatMessage) or item.role not in ("user", "assistant"):
                raise CoordinationInputError(
                    f"messages[{i}] must be a ChatMessage with role user or assistant, "
                    f"got {item!r:.80}",
                    context={"field": f"messages[{i}]"},
                )
            check_text(f"messages[{i}].content", item.content)
            checked.append(item)
        return checked

    def _request_params(
        self,
        messages: Sequence[ChatMessage],
        system: str | None,
        max_tokens: int,
        model: str,
        json_schema: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": model,
            "max_tokens": max_tokens,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
        }
        if system is not None:
            params["system"] = system
        if json_schema is not None:
            if self.structured_output == "tool":
                params["tools"] = [
                    {
                        "name": _TOOL_NAME,
                        "description": "Submit the answer as structured data.",
                        "input_schema": dict(json_schema),
                    }
                ]
                params["tool_choice"] = {"type": "tool", "name": _TOOL_NAME}
            else:
                params["output_config"] = {
                    "format": {"type": "json_schema", "schema": dict(json_schema)}
                }
        return params

    @staticmethod
    def _reply_text(message: Any, *, structured: bool) -> str:
        if structured:
            for block in message.content:
                if getattr(block, "type", None) == "tool_use":
                    return json.dumps(block.input)
        return "".join(
            getattr(block, "text", "") for block in message.content if block.type == "text"
        )

    def _count_failure(self, exc: anthropic.APIError, model: str, started: float) -> None:
        self.stats.calls_failed += 1
        if isinstance(exc, anthropic.APIStatusError):
            status = str(exc.status_code)
        elif isinstance(exc, anthropic.APITimeoutError):
            status = "timeout"
        else:
            status = "connection"
        self.telemetry.api_calls.labels(status).inc()
        self.telemetry.request_seconds.labels(model).observe(time.perf_counter() - started)
        _log.warning("messages api call failed", extra={"model": model, "status": status})

    def cost_summary(self) -> CostSummary:
        """Decimal totals per agent, per model and over the last hour."""
        return self.ledger.summary()

    def health_check(self) -> CheckResult:
        """For cert-runtime's HealthRegistry: unhealthy while the breaker is open."""
        stats = self.breaker.stats()
        status = {
            CircuitState.CLOSED: HealthStatus.HEALTHY,
            CircuitState.HALF_OPEN: HealthStatus.DEGRADED,
            CircuitState.OPEN: HealthStatus.UNHEALTHY,
        }[stats.state]
        summary = self.ledger.summary()
        return CheckResult(
            "anthropic-messages",
            status,
            detail=f"breaker {stats.state.value}",
            data={
                "breaker_state": stats.state.value,
                "retry_after_s": stats.retry_after,
                "cost_last_hour": str(summary.last_hour),
                "max_cost_per_hour": None
                if self.ledger.max_cost_per_hour is None
                else str(self.ledger.max_cost_per_hour),
                "calls_ok": self.stats.calls_ok,
                "calls_failed": self.stats.calls_failed,
            },
        )

    async def aclose(self) -> None:
        await self._sdk.close()

    async def __aenter__(self) -> AnthropicClientWithResilience:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class SyncAnthropicClient:
    """Blocking facade: runs an :class:`AnthropicClientWithResilience` on a private event loop.

    The async client (and its HTTP connection pool, rate limiter and breaker) lives on one
    background loop thread, so blocking calls from any thread share the same limits.
    """

    def __init__(self, api_key: str | None = None, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="cert-coordination-sync", daemon=True
        )
        self._thread.start()
        self.client = AnthropicClientWithResilience(api_key, **kwargs)
        self.default_model = self.client.default_model

    def _run(self, coroutine: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result()

    def complete(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResult:
        """Blocking :meth:`AnthropicClientWithResilience.complete`."""
        result: ChatResult = self._run(self.client.complete(messages, **kwargs))
        return result

    def cost_summary(self) -> CostSummary:
        return self.client.cost_summary()

    def close(self) -> None:
        if self._loop.is_running():
            self._run(self.client.aclose())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> SyncAnthropicClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
