"""Strategies: exact request counts, real concurrency, and the full measurement."""

from __future__ import annotations

import asyncio

import pytest

from cert.coordination import (
    BaselineMeasurer,
    CoordinationOrchestrator,
    QualityEvaluator,
    expected_requests,
)
from cert.coordination.demo import ScriptedDemoResponder
from cert.coordination.errors import CoordinationError, CoordinationInputError
from cert.coordination.orchestrator import majority_answer
from cert.coordination.testing import text_reply

TASK = "Explain how a circuit breaker protects a service that calls a flaky remote API."


def _orchestrate(make_client, registry, tmp_path, coroutine, **kwargs):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        async with make_client() as client:
            evaluator = QualityEvaluator(
                client, registry=registry, debias_order=kwargs.pop("debias_order", False)
            )
            measurer = BaselineMeasurer(
                client, evaluator, cache_path=tmp_path / "b.db", registry=registry
            )
            orchestrator = CoordinationOrchestrator(
                client=client, baseline_measurer=measurer, evaluator=evaluator, **kwargs
            )
            return await coroutine(orchestrator), client

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("strategy", "n", "options", "expected"),
    [
        ("sequential", 3, {}, 3),
        ("parallel", 3, {}, 4),
        ("parallel", 5, {}, 6),
        ("debate", 3, {"debate_rounds": 2}, 7),
        ("debate", 3, {"debate_rounds": 3, "debate_resolution": "vote"}, 9),
        ("debate", 2, {"debate_rounds": 1}, 3),
    ],
)
def test_strategy_request_counts_are_exact(  # type: ignore[no-untyped-def]
    server, make_client, registry, tmp_path, strategy, n, options, expected
) -> None:
    server.responder = ScriptedDemoResponder(seed=2)
    run, _ = _orchestrate(
        make_client, registry, tmp_path, lambda o: o.run_strategy(TASK, n, strategy), **options
    )
    assert run.requests == expected == len(server.requests)
    assert expected == expected_requests(
        strategy,
        n,
        options.get("debate_rounds", 2),
        options.get("debate_resolution", "synthesis"),
    )
    assert len(run.agent_answers) == n
    assert run.final_answer


def test_parallel_agents_really_run_concurrently(server, make_client, registry, tmp_path) -> None:  # type: ignore[no-untyped-def]
    server.responder = ScriptedDemoResponder(seed=2)
    server.latency_s = 0.3
    _orchestrate(make_client, registry, tmp_path, lambda o: o.run_strategy(TASK, 4, "parallel"))
    assert server.max_in_flight == 4  # the four agents were in flight together


def test_sequential_agents_see_the_previous_answer(server, make_client, registry, tmp_path) -> None:  # type: ignore[no-untyped-def]
    server.enqueue(text_reply("first draft"), text_reply("second draft"))
    run, _ = _orchestrate(
        make_client, registry, tmp_path, lambda o: o.run_strategy(TASK, 2, "sequential")
    )
    assert "first draft" in server.requests[1].body["messages"][0]["content"]
    assert run.final_answer == "second draft"
    assert server.max_in_flight == 1


def test_debate_agents_see_the_others_positions(server, make_client, registry, tmp_path) -> None:  # type: ignore[no-untyped-def]
    server.responder = lambda body: text_reply(
        "round two" if "Debate round" in body["messages"][0]["content"] else "opening"
    )
    run, _ = _orchestrate(
        make_client,
        registry,
        tmp_path,
        lambda o: o.run_strategy(TASK, 2, "debate"),
        debate_resolution="vote",
    )
    second_round = [r.body["messages"][0]["content"] for r in server.requests[2:]]
    assert all("opening" in prompt and "Debate round 2" in prompt for prompt in second_round)
    assert run.final_answer == "round two"


def test_measurement_counts_every_call_and_uses_the_baseline_cache(  # type: ignore[no-untyped-def]
    server, make_client, registry, tmp_path
) -> None:
    server.responder = ScriptedDemoResponder(seed=5)

    async def twice(o):  # type: ignore[no-untyped-def]
        first = await o.measure_coordination(TASK, num_agents=3, strategy="parallel", repeats=4)
        after_first = len(server.requests)
        second = await o.measure_coordination(TASK, num_agents=3, strategy="sequential", repeats=2)
        return first, after_first, second

    (first, after_first, second), client = _orchestrate(make_client, registry, tmp_path, twice)
    # parallel: baseline 3 answers + 3 verdicts, then 4 x (4 agent calls + 1 verdict)
    assert first.api_calls == 6 + 4 * 5 == after_first
    assert not first.baseline_cached
    assert second.baseline_cached
    assert second.api_calls == 2 * (3 + 1) == len(server.requests) - after_first
    assert first.repeats == 4
    assert first.gamma_ci is not None
    assert first.gamma_ci.low <= first.gamma_ci.high
    assert 0.0 <= first.consensus_rate <= 1.0
    assert first.cost_usd is not None
    assert first.cost_usd > 0
    assert first.cost_usd + second.cost_usd == client.cost_summary().total
    assert first.judge_parse_failures == 0
    assert first.details["correlation_id"]
    assert first.latency_s > 0


def test_measurement_with_order_debiasing_doubles_judge_calls(  # type: ignore[no-untyped-def]
    server, make_client, registry, tmp_path
) -> None:
    server.responder = ScriptedDemoResponder(seed=5)
    metrics, _ = _orchestrate(
        make_client,
        registry,
        tmp_path,
        lambda o: o.measure_coordination(TASK, num_agents=2, strategy="parallel"),
        debias_order=True,
    )
    assert metrics.api_calls == (2 + 2 * 2) + (3 + 2) == len(server.requests)


def test_all_coordinated_verdicts_unparseable_raises(
    server, make_client, registry, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    demo = ScriptedDemoResponder(seed=5)
    calls = {"judge": 0}

    def responder(body):  # type: ignore[no-untyped-def]
        if "output_config" in body:
            calls["judge"] += 1
            if calls["judge"] > 2:  # baseline verdicts fine, coordinated verdict broken
                return text_reply("I refuse to output JSON")
        return demo(body)

    server.responder = responder
    with pytest.raises(CoordinationError, match="failed to parse"):
        _orchestrate(
            make_client,
            registry,
            tmp_path,
            lambda o: o.measure_coordination(TASK, num_agents=2, strategy="sequential"),
        )


def test_majority_vote_picks_the_medoid() -> None:
    answers = ["alpha beta gamma", "alpha beta delta", "zeta eta theta"]
    assert majority_answer(answers) in answers[:2]
    assert majority_answer(["only"]) == "only"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"task": "", "num_agents": 3, "strategy": "parallel"}, "task"),
        ({"task": TASK, "num_agents": 1, "strategy": "parallel"}, "num_agents"),
        ({"task": TASK, "num_agents": 3, "strategy": "swarm"}, "strategy"),
        ({"task": TASK, "num_agents": 3, "strategy": "parallel", "repeats": 0}, "repeats"),
    ],
)
def test_bad_measurement_inputs(server, make_client, registry, tmp_path, kwargs, fragment) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CoordinationInputError, match=fragment):
        _orchestrate(make_client, registry, tmp_path, lambda o: o.measure_coordination(**kwargs))
    assert server.requests == []


def test_bad_orchestrator_configuration(make_client, registry, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CoordinationInputError, match="debate_rounds"):
        _orchestrate(make_client, registry, tmp_path, lambda o: asyncio.sleep(0), debate_rounds=0)
    with pytest.raises(CoordinationInputError, match="client"):
        CoordinationOrchestrator(client=object(), baseline_measurer=None, evaluator=None)  # type: ignore[arg-type]


def test_seed_api_works_as_documented(server, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from cert.coordination import AnthropicClientWithResilience

    monkeypatch.setenv("CERT_COORDINATION_CACHE_DIR", str(tmp_path))
    server.responder = ScriptedDemoResponder(seed=9)

    async def go():  # type: ignore[no-untyped-def]
        client = AnthropicClientWithResilience(
            api_key="sk-ant-seed",
            requests_per_minute=50,
            max_cost_per_hour=10.0,
            base_url=server.url,
        )
        evaluator = QualityEvaluator(client)
        baseline_measurer = BaselineMeasurer(client, evaluator)
        orchestrator = CoordinationOrchestrator(
            client=client, baseline_measurer=baseline_measurer, evaluator=evaluator
        )
        try:
            return await orchestrator.measure_coordination(
                task=TASK, num_agents=3, strategy="debate"
            )
        finally:
            await client.aclose()

    metrics = asyncio.run(go())
    assert (tmp_path / "baselines.sqlite3").is_file()
    assert metrics.gamma > 0
    assert isinstance(metrics.omega, float)
    assert 0 <= metrics.consensus_rate <= 1
    assert metrics.is_coordination_effective() is False  # one run: no interval, no claim


class WordCountBackend:
    """A local, non-HTTP backend: proves the protocol is all the orchestrator needs."""

    default_model = "local-echo"

    def __init__(self) -> None:
        self.calls = 0

    async def complete(
        self,
        messages,
        *,
        system=None,
        max_tokens=1024,
        model=None,
        agent="default",
        json_schema=None,
    ):  # type: ignore[no-untyped-def]
        from cert.coordination import ChatResult, TokenUsage

        self.calls += 1
        prompt = messages[-1].content
        if json_schema is not None:
            size = min(1.0, len(prompt.split("<answer>")[-1].split()) / 50)
            text = f'{{"correctness": 0.8, "completeness": {size:.3f}, "clarity": 0.7}}'
        else:
            text = " ".join(prompt.split()[: 10 + 5 * self.calls % 20])
        return ChatResult(
            text=text, usage=TokenUsage(len(prompt.split()), 5), model=self.default_model
        )


def test_a_local_backend_can_stand_in_for_the_api(tmp_path) -> None:  # type: ignore[no-untyped-def]
    backend = WordCountBackend()
    evaluator = QualityEvaluator(backend)
    orchestrator = CoordinationOrchestrator(
        client=backend,
        baseline_measurer=BaselineMeasurer(backend, evaluator, cache_path=tmp_path / "b.db"),
        evaluator=evaluator,
    )
    metrics = asyncio.run(orchestrator.measure_coordination(TASK, 2, "parallel", repeats=3))
    assert metrics.api_calls == backend.calls == (2 + 2) + 3 * (3 + 1)
    assert metrics.cost_usd is None  # no price: unknown, never $0
    assert metrics.gamma_ci is not None
