"""Rate limits are charged tokens, not bytes (issue 15): count_tokens online, calibrated offline."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from typing import Any

import pytest

from cert.coordination import ChatMessage
from cert.coordination.client import prompt_token_upper_bound
from cert.coordination.errors import CoordinationInputError
from cert.coordination.testing import FakeAnthropicServer, text_reply
from cert.coordination.tokens import TokenEstimator

# About 10k real tokens of English prose: ~42k bytes, which the old byte count charged in full.
PROSE = " ".join(["The quick brown fox jumps over the lazy dog near the river bank."] * 650)
TEN_K = 10_000


def _ten_k(body: Mapping[str, Any]) -> int:
    assert "max_tokens" not in body  # count_tokens takes the request without it
    return TEN_K


def test_a_10k_token_prompt_fits_a_30k_quota_with_count_tokens(make_client) -> None:  # type: ignore[no-untyped-def]
    with FakeAnthropicServer(token_counter=_ten_k) as fake:
        fake.enqueue(text_reply("ok", input_tokens=TEN_K, output_tokens=2))

        async def go():  # type: ignore[no-untyped-def]
            async with make_client(
                base_url=fake.url, input_tokens_per_minute=30_000, token_counting="api"
            ) as client:
                await client.complete([ChatMessage("user", PROSE)], max_tokens=16)
                return client

        client = asyncio.run(go())
    assert prompt_token_upper_bound([ChatMessage("user", PROSE)], None, None) > 30_000
    paths = [r.path for r in fake.requests]
    assert paths == ["/v1/messages/count_tokens", "/v1/messages"]
    assert client.stats.token_count_calls == 1
    assert client.stats.token_count_fallbacks == 0
    assert sum(n for _, n in client.rate_limiter._input) == TEN_K


def test_offline_the_estimate_is_calibrated_on_reported_usage(make_client, server) -> None:  # type: ignore[no-untyped-def]
    server.enqueue(text_reply("ok", input_tokens=TEN_K, output_tokens=2))
    server.enqueue(text_reply("ok", input_tokens=TEN_K, output_tokens=2))

    async def go():  # type: ignore[no-untyped-def]
        async with make_client(input_tokens_per_minute=40_000) as client:  # both fit: no wait
            await client.complete([ChatMessage("user", PROSE)], max_tokens=16)
            await client.complete([ChatMessage("user", PROSE)], max_tokens=16)
            return client

    client = asyncio.run(go())
    bound = prompt_token_upper_bound([ChatMessage("user", PROSE)], None, None)
    charged = [n for _, n in client.rate_limiter._input]
    assert charged[0] == math.ceil(bound * 0.5)  # the conservative prior
    assert charged[1] == TEN_K  # calibrated on the first response's usage
    assert all(r.path == "/v1/messages" for r in server.requests)  # no count_tokens offline


def test_a_failing_count_tokens_falls_back_to_the_estimate_and_says_so(make_client, server) -> None:  # type: ignore[no-untyped-def]
    server.enqueue(text_reply("ok", input_tokens=5, output_tokens=2))  # server has no count route

    async def go():  # type: ignore[no-untyped-def]
        async with make_client(
            input_tokens_per_minute=30_000, token_counting="api", max_retries=0
        ) as client:
            await client.complete([ChatMessage("user", "Say hello.")], max_tokens=16)
            return client

    client = asyncio.run(go())
    assert client.stats.token_count_fallbacks == 1
    assert [r.path for r in server.requests][-1] == "/v1/messages"


def test_a_prompt_that_really_exceeds_the_quota_is_still_refused(make_client) -> None:  # type: ignore[no-untyped-def]
    with FakeAnthropicServer(token_counter=lambda body: 40_000) as fake:

        async def go():  # type: ignore[no-untyped-def]
            async with make_client(
                base_url=fake.url, input_tokens_per_minute=30_000, token_counting="api"
            ) as client:
                await client.complete([ChatMessage("user", PROSE)], max_tokens=16)

        with pytest.raises(CoordinationInputError, match="never fit"):
            asyncio.run(go())
        assert [r.path for r in fake.requests] == ["/v1/messages/count_tokens"]


def test_estimator_errs_high_and_never_exceeds_the_byte_bound() -> None:
    estimator = TokenEstimator(prior=0.5, history=3)
    assert estimator.estimate(1000) == 500
    for tokens in (200, 300, 250):
        estimator.observe(1000, tokens)
    assert estimator.estimate(1000) == 300  # the largest recent ratio
    estimator.observe(1000, 5000)  # a reply claiming more tokens than bytes is capped
    assert estimator.estimate(1000) == 1000
    estimator.observe(0, 10)  # nothing to learn
    assert estimator.observations == 3


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"prior": 0.0}, "prior"), ({"prior": float("nan")}, "prior"), ({"history": 0}, "history")],
)
def test_estimator_bad_input(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(CoordinationInputError, match=field):
        TokenEstimator(**kwargs)


def test_client_rejects_an_unknown_token_counting_mode(make_client) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CoordinationInputError, match="token_counting"):
        make_client(token_counting="bytes")
