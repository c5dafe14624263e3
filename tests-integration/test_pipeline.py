"""The governed pipeline end to end, on a locally trained model, every member real."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from cert.coordination import AnthropicClientWithResilience, QualityEvaluator
from cert.coordination.testing import FakeAnthropicServer, error_reply, text_reply
from hbt_core import load_private_key, verify_proof_bundle
from resontinex.pipeline import (
    ChatGenerationBackend,
    DriftSettings,
    DriftWatch,
    GovernedPipeline,
    LocalChatBackend,
    LocalModel,
    LocalModelBackend,
    PipelineInputError,
    PipelineRequest,
    SignalMapping,
)
from resontinex.trust import TrustConfigError, TrustMonitor

#: Trust weighs alignment and risk only, and the mapping reads alignment 1 without a judge:
#: every answer of the calm serving model is EXECUTE, and full drift risk (drift_risk=1) pulls the
#: score to 0.5, below the trust floor, so the same answer becomes REVIEW.
DRIFT_SENSITIVE_TRUST = {
    "weights": {"alignment_score": 0.5, "epistemic_risk": 0.5, "confidence_band": 0.0},
    "entropy_threshold": 1.0,
}
DRIFT_SENSITIVE_MAPPING = SignalMapping(alignment_without_judge=1.0, drift_risk=1.0)

REQUESTS = [
    ("How do I roll back a failed payment deployment?", "financial_operations", 0.8),
    ("Add tracing and alerts to the checkout API", "infrastructure_management", 0.3),
    ("Summarise what changed in the customer import job", "data_operations", 0.5),
]


def run(
    pipeline: GovernedPipeline,
    prompt: str,
    category: str = "service_management",
    complexity: float = 0.5,
):
    return asyncio.run(
        pipeline.run(PipelineRequest(prompt, category=category, complexity=complexity))
    )


def test_every_stage_runs_and_the_decision_is_provably_logged(build, tmp_path: Path) -> None:
    pipeline = build()
    results = [run(pipeline, *request) for request in REQUESTS]

    for index, result in enumerate(results):
        assert [s.name for s in result.stages] == ["route", "budget", "generate", "judge", "trust"]
        assert result.decision in {"execute", "review", "defer", "abort"}
        assert result.answer is not None
        assert result.cost_units > 0
        assert all(s.latency_s >= 0 for s in result.stages)
        assert result.audit_index == index
        trust = result.stage("trust").output
        assert trust["signals"]["perplexity"] == result.stage("generate").output["perplexity"]

        bundle = pipeline.audit_log.proof_bundle(result.audit_index)
        public = load_private_key(tmp_path / "signing-key.pem").public_key()
        record = json.loads(verify_proof_bundle(bundle, public))
        assert record["request_id"] == result.request_id
        assert record["decision"] == result.decision
        assert record["trust_score"] == pytest.approx(trust["trust_score"])
    assert pipeline.audit_log.verify()["entries"] == len(REQUESTS)


def test_the_router_overlay_reaches_the_model(build) -> None:
    pipeline = build()
    prompt = REQUESTS[0][0]
    result = run(pipeline, *REQUESTS[0])
    assert result.stage("route").output["overlay"] == "rollback_first"
    overlaid = pipeline.router.apply_overlay(base_prompt=prompt, overlay_name="rollback_first")
    budget = result.stage("budget").output
    # the worst case is reserved: the overlaid prompt, counted by the serving model's own
    # tokenizer, plus max_new_tokens; the actual cost, priced alike, never exceeds it
    tokens = pipeline.backend.local.count_tokens(overlaid)
    assert result.stage("route").output["prompt_tokens"] == tokens
    assert budget["estimate"] == pytest.approx((tokens + 48) * budget["multiplier"])
    assert tokens > 5 * pipeline.backend.local.count_tokens(prompt)
    assert 0 < result.cost_units <= budget["estimate"]
    assert pipeline.governor.snapshot().overrun == 0


def test_budget_exhaustion_stops_before_any_token(build) -> None:
    pipeline = build(budget=50.0)
    result = run(pipeline, *REQUESTS[0])
    assert result.decision == "abort"
    assert result.reason.startswith("budget:")
    assert "generate" not in [s.name for s in result.stages]
    assert result.answer is None
    assert result.cost_units == 0
    assert json.loads(pipeline.audit_log.get(result.audit_index))["decision"] == "abort"


def test_a_failing_backend_aborts_releases_the_budget_and_is_audited(build, local_model) -> None:
    class Broken(LocalModelBackend):
        async def generate(self, prompt: str, *, max_new_tokens: int):
            raise RuntimeError("device lost")

    pipeline = build(backend=Broken(local_model))
    result = run(pipeline, *REQUESTS[1])
    assert result.decision == "abort"
    assert result.reason == "backend error: RuntimeError"
    assert pipeline.governor.snapshot().reserved == 0
    assert pipeline.audit_log.verify()["entries"] == 1


def test_malformed_requests_are_typed_errors_and_log_nothing(build) -> None:
    pipeline = build()
    with pytest.raises(PipelineInputError, match="no_such_category"):
        run(pipeline, "hello", category="no_such_category")
    with pytest.raises(PipelineInputError, match="prompt"):
        PipelineRequest("   ")
    with pytest.raises(PipelineInputError, match="max_new_tokens"):
        PipelineRequest("hello", max_new_tokens=0)
    assert pipeline.audit_log.size == 0


def test_a_corrupted_trust_config_is_refused_and_the_log_is_kept(build, tmp_path: Path) -> None:
    pipeline = build()
    run(pipeline, *REQUESTS[1])
    bad = tmp_path / "trust.yaml"
    bad.write_text("weights:\n  alignment_score: -1\n  epistemic_risk: 0.5\n")
    with pytest.raises(TrustConfigError, match="alignment_score"):
        TrustMonitor(config_path=bad)
    bad.write_bytes(b"\xff\xfe{{{")
    with pytest.raises(TrustConfigError):
        TrustMonitor(config_path=bad)
    assert pipeline.audit_log.verify()["entries"] == 1


def test_the_judge_feeds_the_gate_through_the_real_sdk(build) -> None:
    with FakeAnthropicServer() as server:
        client = AnthropicClientWithResilience(
            api_key="sk-ant-test", base_url=server.url, max_retries=0
        )
        judge = QualityEvaluator(client)
        server.enqueue(text_reply(json.dumps(dict.fromkeys(judge.criteria, 0.9))))
        pipeline = build(judge=judge)
        result = run(pipeline, *REQUESTS[1])

        assert result.stage("judge").output["status"] == "scored"
        assert result.stage("judge").output["score"] == pytest.approx(0.9)
        assert result.stage("trust").output["inputs"]["alignment_score"] == pytest.approx(0.9)
        assert len(server.requests) == 1


def test_an_overloaded_judge_is_flagged_and_the_decision_still_logged(build) -> None:
    with FakeAnthropicServer() as server:
        client = AnthropicClientWithResilience(
            api_key="sk-ant-test", base_url=server.url, max_retries=1
        )
        server.enqueue(*[error_reply(529) for _ in range(4)])
        pipeline = build(
            judge=QualityEvaluator(client), mapping=SignalMapping(alignment_without_judge=0.4)
        )
        result = run(pipeline, *REQUESTS[2])

        assert result.stage("judge").output["status"].startswith("judge unavailable")
        assert result.stage("trust").output["inputs"]["alignment_score"] == 0.4
        assert len(server.requests) == 2  # one try plus max_retries=1, no second retry layer
        assert json.loads(pipeline.audit_log.get(result.audit_index))["decision"] == result.decision


@pytest.mark.slow
def test_a_swapped_model_is_caught_off_the_request_path_and_turns_execute_into_review(
    build, local_model, other_model_dir
) -> None:
    """The drift watch checks on its own schedule, while requests run; its alarm latches and
    raises the risk of every later request."""
    settings = DriftSettings(n_probes=16, dim=8192, sample_rate=0.5, interval_s=0.05)
    serving = LocalModelBackend(local_model)
    drift = DriftWatch(serving.fingerprint_model(), settings)
    pipeline = build(
        drift=drift, trust_config=DRIFT_SENSITIVE_TRUST, mapping=DRIFT_SENSITIVE_MAPPING
    )

    before = [run(pipeline, *REQUESTS[i % 3]) for i in range(3)]
    assert [r.decision for r in before] == ["execute"] * 3
    assert all("drift" not in [s.name for s in r.stages] for r in before)
    assert not drift.flagged

    with LocalModel(other_model_dir) as other:
        replacement = LocalModelBackend(other)
        pipeline.backend = replacement
        drift.serve(replacement.fingerprint_model())
        drift.start()
        try:
            requests = 0
            while not drift.flagged and drift.service.checks < 40:
                last = run(pipeline, *REQUESTS[1])  # requests keep flowing meanwhile
                requests += 1
        finally:
            drift.stop()
        assert drift.flagged, f"the swapped model was not detected in {drift.service.checks} checks"
        assert drift.failures == 0

        after = run(pipeline, *REQUESTS[1])
    assert after.stage("trust").output["signals"]["drift_flagged"] is True
    assert after.stage("trust").output["inputs"]["epistemic_risk"] == 1.0
    assert after.decision == "review"
    assert requests >= 1
    assert last.audit_index is not None
    assert after.audit_index == last.audit_index + 1


def test_an_api_backend_answers_and_the_local_model_scores_its_tokens(build, local_model) -> None:
    """The Anthropic path offline: the real SDK against the fake server, scored by teacher forcing."""
    answer = "Redeploy the previous release, then verify the payment queue drains."
    with FakeAnthropicServer() as server:
        client = AnthropicClientWithResilience(
            api_key="sk-ant-test", base_url=server.url, max_retries=0
        )
        server.enqueue(text_reply(answer, model=client.default_model))
        pipeline = build(backend=ChatGenerationBackend(client, local_model))
        result = run(pipeline, *REQUESTS[0])

        assert result.answer == answer
        generate = result.stage("generate").output
        assert generate["model"] == client.default_model
        assert generate["output_tokens"] == len(answer.split())  # the fake server's usage
        assert generate["perplexity"] > 1  # measured by the local model, teacher-forced
        assert result.stage("trust").output["signals"]["perplexity"] == generate["perplexity"]
        (request,) = server.requests
        assert "rollback" in json.dumps(request.body).lower()  # the overlay reached the API


def test_the_local_model_as_judge_fails_to_parse_and_says_so(build, local_model) -> None:
    """A tiny model cannot write judge JSON: the verdict is None and counted, never invented."""
    judge = QualityEvaluator(LocalChatBackend(local_model))
    pipeline = build(judge=judge, mapping=SignalMapping(alignment_without_judge=0.3))
    result = run(pipeline, *REQUESTS[1])
    assert result.stage("judge").output["status"] == "judge reply could not be parsed"
    assert judge.parse_failures == 1
    assert result.stage("trust").output["inputs"]["alignment_score"] == 0.3
