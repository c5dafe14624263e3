"""LLM-as-judge: structured verdicts, recomputed overall, parse failures are None and counted."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cert.coordination import QualityEvaluator
from cert.coordination.errors import CoordinationInputError
from cert.coordination.testing import text_reply, tool_use_reply


def _judge(make_client, registry, **kwargs):  # type: ignore[no-untyped-def]
    async def go(*answers: str):  # type: ignore[no-untyped-def]
        async with make_client(**kwargs.pop("client", {})) as client:
            evaluator = QualityEvaluator(client, registry=registry, **kwargs)
            results = [await evaluator.evaluate("Explain TCP.", a) for a in answers]
            return evaluator, results

    return go


def test_overall_is_recomputed_from_criteria(server, make_client, registry) -> None:  # type: ignore[no-untyped-def]
    verdict = {"correctness": 1.0, "completeness": 0.5, "clarity": 0.0, "overall": 0.99}
    server.enqueue(text_reply(json.dumps(verdict)))
    evaluator, (score,) = asyncio.run(_judge(make_client, registry)("TCP is a protocol."))
    assert score is not None
    assert score.overall == pytest.approx(0.4 * 1.0 + 0.3 * 0.5 + 0.3 * 0.0)
    assert score.criteria == {"correctness": 1.0, "completeness": 0.5, "clarity": 0.0}
    body = server.requests[0].body
    assert body["output_config"]["format"]["schema"]["required"] == [
        "correctness",
        "completeness",
        "clarity",
    ]
    assert evaluator.parse_failures == 0


@pytest.mark.parametrize(
    "reply",
    [
        "not json at all",
        '{"correctness": 1.0, "completeness": 0.5}',
        '{"correctness": 1.5, "completeness": 0.5, "clarity": 0.5}',
        '{"correctness": "high", "completeness": 0.5, "clarity": 0.5}',
        '{"correctness": true, "completeness": 0.5, "clarity": 0.5}',
        '{"correctness": NaN, "completeness": 0.5, "clarity": 0.5}',
        "[0.5, 0.5, 0.5]",
        "",
    ],
)
def test_malformed_verdict_is_none_and_counted(server, make_client, registry, reply) -> None:  # type: ignore[no-untyped-def]
    server.enqueue(text_reply(reply))
    evaluator, (score,) = asyncio.run(_judge(make_client, registry)("an answer"))
    assert score is None
    assert evaluator.parse_failures == 1
    assert registry.get_sample_value("cert_coordination_judge_parse_failures_total") == 1.0


def test_malformed_tool_output_is_none(server, make_client, registry) -> None:  # type: ignore[no-untyped-def]
    server.enqueue(
        tool_use_reply("submit_structured_answer", {"correctness": "??"}),
        tool_use_reply(
            "submit_structured_answer", {"correctness": 0.9, "completeness": 0.9, "clarity": 0.6}
        ),
    )
    go = _judge(make_client, registry, client={"structured_output": "tool"})
    evaluator, (bad, good) = asyncio.run(go("first", "second"))
    assert bad is None
    assert good is not None
    assert good.overall == pytest.approx(0.36 + 0.27 + 0.18)
    assert evaluator.stats.parse_failures == 1
    assert evaluator.stats.verdicts == 1


def test_order_debiasing_makes_two_calls_and_averages(server, make_client, registry) -> None:  # type: ignore[no-untyped-def]
    server.enqueue(
        text_reply('{"correctness": 1.0, "completeness": 0.6, "clarity": 0.2}'),
        text_reply('{"correctness": 0.8, "completeness": 0.6, "clarity": 0.4}'),
    )
    evaluator, (score,) = asyncio.run(_judge(make_client, registry, debias_order=True)("answer"))
    assert len(server.requests) == 2
    prompts = [r.body["messages"][0]["content"] for r in server.requests]
    assert prompts[0] != prompts[1]  # criteria listed in the two orders
    assert score is not None
    assert score.criteria == pytest.approx(
        {"correctness": 0.9, "completeness": 0.6, "clarity": 0.3}
    )
    assert score.order_disagreement == pytest.approx(0.2)
    assert evaluator.calls_per_answer == 2


def test_judge_model_is_separate_from_agent_model(server, make_client, registry) -> None:  # type: ignore[no-untyped-def]
    server.enqueue(text_reply('{"correctness": 1, "completeness": 1, "clarity": 1}'))
    asyncio.run(_judge(make_client, registry, judge_model="claude-haiku-4-5")("x"))
    assert server.requests[0].body["model"] == "claude-haiku-4-5"


def test_custom_criteria_change_the_cache_identity(make_client, registry) -> None:  # type: ignore[no-untyped-def]
    client = make_client()
    a = QualityEvaluator(client, registry=registry)
    b = QualityEvaluator(client, criteria={"accuracy": 1.0}, registry=registry)
    c = QualityEvaluator(client, judge_model="claude-haiku-4-5", registry=registry)
    assert a.criteria_hash != b.criteria_hash
    assert a.criteria_hash == c.criteria_hash  # the judge model is keyed separately


@given(st.text(max_size=200))
def test_parse_scores_never_raises(text: str) -> None:
    evaluator = QualityEvaluator.__new__(QualityEvaluator)
    evaluator.criteria = {"a": 1.0, "b": 2.0}
    result = evaluator.parse_scores(text)
    assert result is None or set(result) == {"a", "b"}


@given(st.dictionaries(st.sampled_from(["a", "b", "c"]), st.floats(allow_nan=True)))
def test_parse_scores_accepts_only_complete_in_range_verdicts(data: dict) -> None:  # type: ignore[type-arg]
    evaluator = QualityEvaluator.__new__(QualityEvaluator)
    evaluator.criteria = {"a": 1.0, "b": 2.0}
    try:
        text = json.dumps(data)
    except ValueError:
        return
    result = evaluator.parse_scores(text)
    valid = all(k in data and 0.0 <= data[k] <= 1.0 for k in ("a", "b"))
    assert (result is not None) == valid


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"criteria": {}}, "criteria"),
        ({"criteria": {"a b": 1.0}}, "alphanumeric"),
        ({"criteria": {"a": 0}}, "criteria"),
        ({"criteria": {"a": float("nan")}}, "criteria"),
        ({"judge_model": ""}, "judge_model"),
        ({"debias_order": "yes"}, "debias_order"),
    ],
)
def test_bad_evaluator_configuration(make_client, kwargs, fragment) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CoordinationInputError, match=fragment):
        QualityEvaluator(make_client(), **kwargs)


def test_backend_must_follow_the_protocol() -> None:
    with pytest.raises(CoordinationInputError, match="ChatBackend"):
        QualityEvaluator(object())  # type: ignore[arg-type]


def test_bad_task_and_answer(make_client, registry) -> None:  # type: ignore[no-untyped-def]
    evaluator = QualityEvaluator(make_client(), registry=registry)
    with pytest.raises(CoordinationInputError, match="task"):
        asyncio.run(evaluator.evaluate("", "answer"))
    with pytest.raises(CoordinationInputError, match="answer"):
        asyncio.run(evaluator.evaluate("task", None))  # type: ignore[arg-type]


def test_drift_streams_are_keyed_by_task_and_role(server, make_client, registry) -> None:  # type: ignore[no-untyped-def]
    low = {"correctness": 0.2, "completeness": 0.2, "clarity": 0.2}
    high = {"correctness": 0.9, "completeness": 0.9, "clarity": 0.9}

    async def go():  # type: ignore[no-untyped-def]
        async with make_client() as client:
            evaluator = QualityEvaluator(client, registry=registry)
            for verdict, role in [(low, "baseline")] * 20 + [(high, "team:debate:3")] * 20:
                server.enqueue(text_reply(json.dumps(verdict)))
                score = await evaluator.evaluate("Explain TCP.", "an answer", role=role)
                assert score is not None
            return evaluator

    evaluator = asyncio.run(go())
    baseline = evaluator.drift_status("Explain TCP.", "baseline")
    team = evaluator.drift_status("Explain TCP.", "team:debate:3")
    # one stream would have read the better team as judge drift (reference low, window high)
    assert (baseline.scores_seen, baseline.tests_run, baseline.alarm) == (20, 1, False)
    assert (team.scores_seen, team.tests_run, team.alarm) == (20, 1, False)
    assert evaluator.drift_status("Explain TCP.").scores_seen == 0
