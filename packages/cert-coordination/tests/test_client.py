"""The resilient client with the real anthropic SDK against the fake Messages API server."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from decimal import Decimal

import pytest

from cert.coordination import AnthropicClientWithResilience, ChatMessage, SyncAnthropicClient
from cert.coordination.errors import (
    APICallError,
    CoordinationInputError,
    CostCapExceededError,
    UnknownModelError,
)
from cert.coordination.testing import error_reply, text_reply, tool_use_reply
from cert.runtime.breaker import CircuitState
from cert.runtime.errors import CircuitOpenError
from cert.runtime.logging import JsonFormatter

HELLO = [ChatMessage("user", "Say hello.")]
TEST_KEY = "sk-ant-test-0123456789abcdef"  # the key conftest's make_client uses
FAST_RETRY = {"retry-after-ms": "5"}  # the SDK honours it; keeps retried tests fast


def _gap(server, i: int) -> float:  # type: ignore[no-untyped-def]
    requests = server.requests
    return requests[i + 1].at - requests[i].at


def test_success_records_usage_cost_and_wire_format(server, make_client, registry) -> None:  # type: ignore[no-untyped-def]
    server.enqueue(text_reply("Hello there.", input_tokens=1000, output_tokens=500))

    async def go():  # type: ignore[no-untyped-def]
        async with make_client() as client:
            result = await client.complete(
                HELLO, system="Be brief.", agent="agent-1", max_tokens=64
            )
            return result, client.cost_summary()

    result, summary = asyncio.run(go())
    assert result.text == "Hello there."
    assert result.usage.input_tokens == 1000
    assert result.usage.output_tokens == 500
    # claude-sonnet-5: $2 / $10 per MTok
    expected = Decimal(1000) * 2 / 10**6 + Decimal(500) * 10 / 10**6
    assert result.extra["cost_usd"] == expected
    assert summary.by_agent == {"agent-1": expected}
    assert summary.by_model == {"claude-sonnet-5": expected}
    body = server.requests[0].body
    assert body["model"] == "claude-sonnet-5"
    assert body["max_tokens"] == 64
    assert body["system"] == "Be brief."
    assert body["messages"] == [{"role": "user", "content": "Say hello."}]
    assert "temperature" not in body
    headers = server.requests[0].headers
    credential = headers.get("x-api-key") or headers.get("authorization")
    assert credential == "***"  # the server masks the credential it records
    assert registry.get_sample_value("cert_coordination_api_calls_total", {"status": "ok"}) == 1.0
    assert registry.get_sample_value(
        "cert_coordination_cost_usd_total", {"agent": "agent-1", "model": "claude-sonnet-5"}
    ) == pytest.approx(float(expected))


def test_429_retry_after_is_honoured_by_the_sdk(server, make_client) -> None:  # type: ignore[no-untyped-def]
    server.enqueue(error_reply(429, "slow down", headers={"retry-after": "1"}), text_reply("ok"))

    async def go():  # type: ignore[no-untyped-def]
        async with make_client(max_retries=2) as client:
            result = await client.complete(HELLO)
            return result, client.stats

    result, stats = asyncio.run(go())
    assert result.text == "ok"
    assert len(server.requests) == 2
    assert stats.http_attempts == 2
    assert 0.9 <= _gap(server, 0) <= 1.1  # retry-after: 1 s, within ±10%


def test_529_overload_exhausts_after_max_retries_plus_one_attempts(server, make_client) -> None:  # type: ignore[no-untyped-def]
    server.enqueue(error_reply(529, "Overloaded", headers=FAST_RETRY) for _ in range(10))

    async def go():  # type: ignore[no-untyped-def]
        async with make_client(max_retries=3, failure_threshold=5) as client:
            with pytest.raises(APICallError) as info:
                await client.complete(HELLO)
            return info.value, client

    error, client = asyncio.run(go())
    assert len(server.requests) == 4  # max_retries + 1, one retry layer only
    assert error.status_code == 529
    assert error.error_type == "overloaded_error"
    assert error.recoverable
    assert client.breaker.stats().consecutive_failures == 1  # one logical call, one failure


def test_500_then_success(server, make_client) -> None:  # type: ignore[no-untyped-def]
    server.enqueue(error_reply(500, headers=FAST_RETRY), text_reply("recovered"))

    async def go():  # type: ignore[no-untyped-def]
        async with make_client(max_retries=2) as client:
            return await client.complete(HELLO), client

    result, client = asyncio.run(go())
    assert result.text == "recovered"
    assert result.extra["http_attempts"] == 2
    assert client.breaker.state == CircuitState.CLOSED


@pytest.mark.parametrize(
    ("status", "kind"), [(400, "invalid_request_error"), (401, "authentication_error")]
)
def test_client_errors_are_not_retried_nor_counted_by_the_breaker(  # type: ignore[no-untyped-def]
    server, make_client, status, kind
) -> None:
    server.enqueue(error_reply(status, "nope") for _ in range(3))

    async def go():  # type: ignore[no-untyped-def]
        async with make_client(max_retries=2, failure_threshold=1) as client:
            for _ in range(2):
                with pytest.raises(APICallError) as info:
                    await client.complete(HELLO)
                assert info.value.status_code == status
                assert info.value.error_type == kind
                assert not info.value.recoverable
            return client

    client = asyncio.run(go())
    assert len(server.requests) == 2  # one attempt per call
    assert client.breaker.state == CircuitState.CLOSED  # threshold 1, yet still closed
    assert client.cost_summary().reserved == 0  # reservations released


def test_breaker_opens_then_half_opens_with_exactly_one_probe(  # type: ignore[no-untyped-def]
    server, make_client, manual_clock, registry
) -> None:
    server.enqueue(error_reply(500), error_reply(500))

    async def go():  # type: ignore[no-untyped-def]
        async with make_client(
            max_retries=0, failure_threshold=2, recovery_timeout_s=30.0, clock=manual_clock
        ) as client:
            for _ in range(2):
                with pytest.raises(APICallError):
                    await client.complete(HELLO)
            assert client.breaker.state == CircuitState.OPEN
            with pytest.raises(CircuitOpenError):
                await client.complete(HELLO)
            assert len(server.requests) == 2  # the open breaker sent nothing
            manual_clock.advance(30.0)
            server.enqueue(text_reply("probe ok", delay_s=0.3))
            outcomes = await asyncio.gather(
                *(client.complete(HELLO) for _ in range(3)), return_exceptions=True
            )
            return client, outcomes

    client, outcomes = asyncio.run(go())
    assert len(server.requests) == 3  # exactly one probe reached the server
    assert sum(1 for o in outcomes if isinstance(o, CircuitOpenError)) == 2
    assert [o.text for o in outcomes if not isinstance(o, BaseException)] == ["probe ok"]
    assert client.breaker.state == CircuitState.CLOSED
    assert (
        registry.get_sample_value("cert_coordination_api_calls_total", {"status": "circuit_open"})
        == 3.0
    )
    assert (
        registry.get_sample_value(
            "cert_coordination_breaker_state", {"breaker": "anthropic-messages"}
        )
        == 0.0
    )


def test_cost_cap_refuses_before_sending(server, make_client) -> None:  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        async with make_client(max_cost_per_hour=0.001) as client:
            # worst case: 4000 output tokens x $10/MTok = $0.04 > $0.001
            with pytest.raises(CostCapExceededError, match="max_cost_per_hour"):
                await client.complete(HELLO, max_tokens=4000)

    asyncio.run(go())
    assert server.requests == []


def test_cost_cap_holds_across_concurrent_requests(server, make_client) -> None:  # type: ignore[no-untyped-def]
    server.enqueue(
        text_reply("a", input_tokens=5, output_tokens=1000, delay_s=0.2) for _ in range(5)
    )

    async def go():  # type: ignore[no-untyped-def]
        # Each request may cost up to ~1000 x $10/MTok = $0.01; the cap fits two of them.
        async with make_client(max_cost_per_hour=0.021) as client:
            outcomes = await asyncio.gather(
                *(client.complete(HELLO, max_tokens=1000) for _ in range(5)), return_exceptions=True
            )
            return outcomes, client.cost_summary()

    outcomes, summary = asyncio.run(go())
    assert sum(1 for o in outcomes if isinstance(o, CostCapExceededError)) == 3
    assert len(server.requests) == 2
    assert summary.total <= Decimal("0.021")


def test_structured_output_modes(server, make_client) -> None:  # type: ignore[no-untyped-def]
    schema = {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}
    server.enqueue(text_reply('{"x": 1}'), tool_use_reply("submit_structured_answer", {"x": 2}))

    async def go():  # type: ignore[no-untyped-def]
        async with make_client() as a, make_client(structured_output="tool") as b:
            return (
                await a.complete(HELLO, json_schema=schema),
                await b.complete(HELLO, json_schema=schema),
            )

    first, second = asyncio.run(go())
    assert json.loads(first.text) == {"x": 1}
    assert json.loads(second.text) == {"x": 2}
    assert server.requests[0].body["output_config"] == {
        "format": {"type": "json_schema", "schema": schema}
    }
    assert server.requests[1].body["tool_choice"] == {
        "type": "tool",
        "name": "submit_structured_answer",
    }


def test_ratelimit_headers_reach_the_limiter(server, make_client) -> None:  # type: ignore[no-untyped-def]
    server.enqueue(
        text_reply(
            "ok",
            headers={
                "anthropic-ratelimit-requests-remaining": "0",
                "anthropic-ratelimit-requests-reset": "2999-01-01T00:00:00Z",
            },
        )
    )

    async def go():  # type: ignore[no-untyped-def]
        async with make_client() as client:
            await client.complete(HELLO)
            return client.rate_limiter.try_acquire()

    assert asyncio.run(go()) > 1e6


def test_sync_facade(server, registry) -> None:  # type: ignore[no-untyped-def]
    server.enqueue(text_reply("sync hello"))
    with SyncAnthropicClient(TEST_KEY, base_url=server.url, registry=registry) as client:
        assert client.complete(HELLO).text == "sync hello"
        assert client.cost_summary().total > 0


def test_api_key_never_logged(server, make_client) -> None:  # type: ignore[no-untyped-def]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("cert.coordination")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    server.enqueue(text_reply("hi"), error_reply(401, f"invalid x-api-key {TEST_KEY}"))

    async def go():  # type: ignore[no-untyped-def]
        async with make_client() as client:
            await client.complete(HELLO)
            with pytest.raises(APICallError):
                await client.complete(HELLO)

    try:
        asyncio.run(go())
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "messages api call" in text
    assert TEST_KEY not in text


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"model": ""}, "model"),
        ({"model": "gpt-unknown"}, "gpt-unknown"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": True}, "max_retries"),
        ({"timeout_s": float("inf")}, "timeout_s"),
        ({"max_cost_per_hour": float("nan")}, "max_cost_per_hour"),
        ({"max_cost_per_hour": 0}, "max_cost_per_hour"),
        ({"requests_per_minute": 0}, "requests_per_minute"),
        ({"structured_output": "xml"}, "structured_output"),
        ({"api_key": 123}, "api_key"),
    ],
)
def test_bad_client_configuration(make_client, kwargs, fragment) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises((CoordinationInputError, UnknownModelError), match=fragment):
        make_client(**kwargs)


@pytest.mark.parametrize(
    ("messages", "kwargs", "fragment"),
    [
        ([], {}, "messages"),
        ("hello", {}, "messages"),
        ([{"role": "user", "content": "hi"}], {}, r"messages\[0\]"),
        ([ChatMessage("user", "   ")], {}, "content"),
        ([ChatMessage("user", "x" * 300_000)], {}, "limit"),
        (HELLO, {"max_tokens": 0}, "max_tokens"),
        (HELLO, {"max_tokens": 1.5}, "max_tokens"),
        (HELLO, {"agent": ""}, "agent"),
        (HELLO, {"model": "unknown-model"}, "unknown-model"),
        (HELLO, {"json_schema": "[1, 2]"}, "json_schema"),
        (HELLO, {"system": ""}, "system"),
    ],
)
def test_bad_requests_fail_before_sending(server, make_client, messages, kwargs, fragment) -> None:  # type: ignore[no-untyped-def]
    async def go() -> None:
        async with make_client() as client:
            with pytest.raises((CoordinationInputError, UnknownModelError), match=fragment):
                await client.complete(messages, **kwargs)

    asyncio.run(go())
    assert server.requests == []


def test_missing_api_key_is_a_typed_error(monkeypatch, server) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    with pytest.raises(CoordinationInputError, match="ANTHROPIC_API_KEY"):
        AnthropicClientWithResilience(base_url=server.url)


def test_health_check_follows_the_breaker(server, make_client, manual_clock) -> None:  # type: ignore[no-untyped-def]
    from cert.runtime.health import HealthRegistry, HealthStatus

    server.enqueue(error_reply(503))

    async def go():  # type: ignore[no-untyped-def]
        async with make_client(max_retries=0, failure_threshold=1, clock=manual_clock) as client:
            health = HealthRegistry()
            health.register("anthropic", client.health_check)
            before = health.check().status
            with pytest.raises(APICallError):
                await client.complete(HELLO)
            return before, health.check(), client.health_check()

    before, after, check = asyncio.run(go())
    assert before == HealthStatus.HEALTHY
    assert after.status == HealthStatus.UNHEALTHY
    assert check.data["breaker_state"] == "open"
    assert check.data["calls_failed"] == 1


def test_timeouts_count_as_server_failures(server, make_client) -> None:  # type: ignore[no-untyped-def]
    server.enqueue(text_reply("too late", delay_s=0.6))

    async def go():  # type: ignore[no-untyped-def]
        async with make_client(max_retries=0, timeout_s=0.2, failure_threshold=1) as client:
            with pytest.raises(APICallError) as info:
                await client.complete(HELLO)
            return info.value, client

    error, client = asyncio.run(go())
    assert error.error_type == "timeout"
    assert error.status_code is None
    assert client.breaker.state == CircuitState.OPEN
