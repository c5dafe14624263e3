"""The same request gets the same decision under any load, and the budget holds under load.

Regression of issue 12: the drift watch's fingerprint probes ran forward passes on the serving
model from another thread while the trajectory monitor's hook was attached, so concurrent
requests were scored with the probes' logits. Here the drift watch runs on a fast schedule
during every concurrency test, as it did when the bug showed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cert.trajectory import TrajectoryResult
from fusion_ops.config import load_governance_config
from resontinex.pipeline import (
    DriftSettings,
    DriftWatch,
    GovernedPipeline,
    LocalModelBackend,
    ModelWorker,
    PipelineInputError,
    PipelineRequest,
    PipelineResult,
    SignalMapping,
    WorkerClosedError,
)
from resontinex.pipeline.worker import Batched

PROMPTS = [
    ("concurrent request 7 about service restart", "service_management"),
    ("How do I roll back a failed payment deployment?", "financial_operations"),
    ("Add tracing", "infrastructure_management"),
    ("Summarise what changed in the customer import job and why it failed", "data_operations"),
]
REL = 1e-6


@pytest.fixture
def watched(build, local_model: ModelWorker) -> Iterator[GovernedPipeline]:
    """A pipeline whose drift watch probes the same worker on a fast schedule.

    Hundreds of checks a minute make a false alarm of the CUSUM likely; drift_risk=0 keeps a
    latched alarm from changing trust here, because what these tests compare is what the
    monitor measured while probes ran (the latch itself is tested in test_pipeline.py).
    """
    drift = DriftWatch(
        LocalModelBackend(local_model).fingerprint_model(),
        DriftSettings(n_probes=8, calibration_runs=2, interval_s=0.01),
    )
    pipeline = build(drift=drift, mapping=SignalMapping(drift_risk=0.0))
    drift.start()
    yield pipeline
    drift.stop()
    assert drift.failures == 0
    assert drift.service.checks > 0  # the watch really ran alongside the requests


def request(prompt: str, category: str, max_new_tokens: int = 8, **kw: Any) -> PipelineRequest:
    return PipelineRequest(prompt, category=category, max_new_tokens=max_new_tokens, **kw)


def observed(result: PipelineResult) -> tuple[str | None, int, float, float, str]:
    generate = result.stage("generate").output
    return (
        result.answer,
        generate["output_tokens"],
        generate["perplexity"],
        result.stage("trust").output["trust_score"],
        result.decision,
    )


def assert_same(alone: tuple[Any, ...], other: tuple[Any, ...]) -> None:
    assert other[0] == alone[0]  # the same answer text
    assert other[1] == alone[1]  # the same number of tokens
    assert other[2] == pytest.approx(alone[2], rel=REL)  # perplexity
    assert other[3] == pytest.approx(alone[3], rel=REL)  # trust score
    assert other[4] == alone[4]  # decision


def run_all(pipeline: GovernedPipeline, requests: list[PipelineRequest]) -> list[PipelineResult]:
    async def go() -> list[PipelineResult]:
        return list(await asyncio.gather(*(pipeline.run(r) for r in requests)))

    return asyncio.run(go())


@pytest.mark.parametrize("n", [16, 32])
def test_concurrent_identical_requests_get_the_lone_runs_result(watched, n: int) -> None:
    prompt, category = PROMPTS[0]
    (alone,) = run_all(watched, [request(prompt, category)])
    results = run_all(watched, [request(prompt, category) for _ in range(n)])
    for result in results:
        assert_same(observed(alone), observed(result))
    assert max(r.stage("generate").output["batch_size"] for r in results) > 1  # batched
    assert len({r.audit_index for r in results}) == n
    for result in results:  # what was signed is what was measured, under its own index
        record = json.loads(watched.audit_log.get(result.audit_index))
        assert record["request_id"] == result.request_id
        assert record["trust_score"] == result.stage("trust").output["trust_score"]


def test_concurrent_mixed_prompts_get_their_lone_runs_results(watched) -> None:
    alone = {p: observed(run_all(watched, [request(p, c)])[0]) for p, c in PROMPTS}
    mixed = [PROMPTS[i % len(PROMPTS)] for i in range(24)]
    results = run_all(watched, [request(p, c) for p, c in mixed])
    for (prompt, _), result in zip(mixed, results, strict=True):
        assert_same(alone[prompt], observed(result))
    # prompts of different lengths shared a left-padded batch
    assert max(r.stage("generate").output["batch_size"] for r in results) > 1


def test_signals_do_not_depend_on_batch_mates(local_model: ModelWorker) -> None:
    """Padding, position ids and attention mask: a prompt's every per-token signal is the same
    alone and in a batch with shorter and longer prompts (and one that fails)."""
    config = local_model.generation_config(12)
    target = "Return the value of the environment variable"
    mates = ["x", "A much longer prompt " * 12, "Open the file and read it line by line"]
    too_long = "word " * 4000  # beyond the model's context: fails alone, not its batch-mates

    async def go() -> tuple[TrajectoryResult, list[Any]]:
        alone = (await local_model.generate(target, config)).result
        together = await asyncio.gather(
            *(local_model.generate(p, config) for p in [*mates, target, too_long]),
            return_exceptions=True,
        )
        return alone, together

    alone, together = asyncio.run(go())
    assert isinstance(together[-1], Exception)
    assert "2048" in str(together[-1])  # the limit it broke is named
    batched = together[len(mates)].result
    assert batched.text == alone.text
    assert [t.token_id for t in batched.tokens] == [t.token_id for t in alone.tokens]
    for mine, theirs in zip(alone.tokens, batched.tokens, strict=True):
        assert theirs.log_prob == pytest.approx(mine.log_prob, rel=REL, abs=1e-6)
        assert theirs.entropy == pytest.approx(mine.entropy, rel=REL, abs=1e-6)
    assert batched.perplexity == pytest.approx(alone.perplexity, rel=REL)


def test_cached_overlay_prefixes_give_the_uncached_lone_runs_signals(
    build, local_model: ModelWorker, model_dir: Path
) -> None:
    """Overlays of about 1,100 tokens come from the prefix cache; mixed overlays and prompt
    lengths (and a prompt without an overlay) in one batch still get, token for token, what a
    worker without a prefix cache computes for each prompt alone."""
    router = build().router
    prompts = []
    for prompt, category in PROMPTS:
        overlay = router.route_scenario(
            {"category": category, "complexity": 0.5, "description": prompt}
        ).selected_overlay
        assert overlay is not None
        prompts.append(router.apply_overlay(base_prompt=prompt, overlay_name=overlay))
    assert len({p.split("\n")[0] for p in prompts}) > 1  # more than one overlay
    prompts.append("Open the file and read it line by line")
    config = local_model.generation_config(12)

    async def each(worker: ModelWorker) -> list[TrajectoryResult]:
        return [(await worker.generate(p, config)).result for p in prompts]

    async def together() -> list[Batched]:
        return list(await asyncio.gather(*(local_model.generate(p, config) for p in prompts)))

    with ModelWorker(model_dir, prefix_cache_tokens=0) as plain:
        lone = asyncio.run(each(plain))
        assert plain.prefix_cache_info() is None
    asyncio.run(together())  # the overlays are learnt (or already known to the shared worker)
    before = local_model.prefix_cache_info()
    assert before is not None
    batched = asyncio.run(together())
    after = local_model.prefix_cache_info()
    assert after is not None
    assert after["reused_tokens"] - before["reused_tokens"] > 900 * (len(prompts) - 1)
    assert max(b.batch_size for b in batched) > 1
    for expected, served in zip(lone, batched, strict=True):
        got = served.result
        assert got.text == expected.text
        assert [t.token_id for t in got.tokens] == [t.token_id for t in expected.tokens]
        for mine, theirs in zip(expected.tokens, got.tokens, strict=True):
            assert theirs.log_prob == pytest.approx(mine.log_prob, rel=REL, abs=1e-9)
            assert theirs.entropy == pytest.approx(mine.entropy, rel=REL, abs=1e-9)
        assert got.perplexity == pytest.approx(expected.perplexity, rel=REL)


def test_64_concurrent_requests_never_overspend_a_small_budget(build) -> None:
    limits = load_governance_config().budget_limits
    pipeline = build(budget=12_000.0)
    hard_limit = 12_000.0 * limits.hard_limit_percentage / 100
    seen: list[float] = []

    async def go() -> list[PipelineResult]:
        done = asyncio.Event()

        async def watch() -> None:  # the ledger at every turn of the event loop
            while not done.is_set():
                snap = pipeline.governor.snapshot()
                seen.append(snap.committed + snap.reserved)
                await asyncio.sleep(0)

        watcher = asyncio.create_task(watch())
        prompts = [PROMPTS[i % len(PROMPTS)] for i in range(64)]
        results = await asyncio.gather(*(pipeline.run(request(p, c, 32)) for p, c in prompts))
        done.set()
        await watcher
        return list(results)

    results = asyncio.run(go())
    snap = pipeline.governor.snapshot()
    admitted = [r for r in results if "generate" in [s.name for s in r.stages]]
    assert 0 < len(admitted) < 64  # the budget admitted some and refused the rest
    assert all(r.decision in {"review", "abort"} for r in results if r not in admitted)
    assert max(seen) <= hard_limit
    assert snap.committed <= hard_limit
    assert snap.overrun == 0  # no request spent more than it reserved
    assert snap.reserved == 0  # every reservation was committed or released
    assert snap.open_reservations == 0
    assert snap.committed == pytest.approx(sum(r.cost_units for r in results))
    for result in admitted:
        assert 0 < result.cost_units <= result.stage("budget").output["estimate"]
    assert pipeline.audit_log.size == 64


def test_a_cancelled_request_releases_its_reservation(build) -> None:
    """A client that goes away mid-generation (HTTP disconnect) leaks no reservation."""
    pipeline = build()
    prompt, category = PROMPTS[1]

    async def go() -> None:
        task = asyncio.create_task(pipeline.run(request(prompt, category, 64)))
        while pipeline.governor.snapshot().reserved == 0:
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    snap = pipeline.governor.snapshot()
    assert snap.reserved == 0
    assert snap.open_reservations == 0
    assert snap.committed == 0


def test_emergency_needs_an_approver_who_is_recorded(build) -> None:
    """Above the review threshold, emergency=True alone is an ordinary request (review); with an
    approver it is admitted, and the audit record names the approver."""
    prompt, category = PROMPTS[0]
    pipeline = build()
    routing = pipeline.router.route_scenario(
        {"category": category, "complexity": 0.5, "description": prompt}
    )
    assert routing.selected_overlay is not None
    overlaid = pipeline.router.apply_overlay(
        base_prompt=prompt, overlay_name=routing.selected_overlay
    )
    worst = pipeline.governor.estimate(pipeline.backend.local.count_tokens(overlaid) + 8)
    # one ordinary request would take the ledger to 90%: past review (85%), below the brake
    pipeline.governor.start_period("tight", worst.cost / 0.90)
    plain = run_all(pipeline, [request(prompt, category, emergency=True)])[0]
    assert plain.decision == "review"
    assert plain.reason.startswith("budget:")
    assert "not approved" in plain.stage("budget").output["emergency"]
    assert "emergency_discount" not in plain.stage("budget").output["applied"]

    approved = run_all(pipeline, [request(prompt, category, emergency=True, approver="alice")])[0]
    assert "generate" in [s.name for s in approved.stages]
    assert approved.stage("budget").output["emergency"] == "approved by alice"
    record = json.loads(pipeline.audit_log.get(approved.audit_index))
    assert record["approver"] == "alice"
    assert record["emergency"] is True
    assert json.loads(pipeline.audit_log.get(plain.audit_index))["approver"] is None
    assert pipeline.governor.snapshot().overrun == 0

    with pytest.raises(PipelineInputError, match="approver"):
        PipelineRequest("x", approver="  ")
    with pytest.raises(PipelineInputError, match="approver"):
        PipelineRequest("x", approver="a\nb")


def test_a_prompt_beyond_the_context_is_refused_before_any_cost(build) -> None:
    pipeline = build()
    prompt = "Restart the worker pool and report what failed. " * 40  # ~2,000 characters
    with pytest.raises(PipelineInputError, match="context of 2048 tokens") as caught:
        run_all(pipeline, [request(prompt, "financial_operations", 48)])
    assert "prompt" in str(caught.value)
    snap = pipeline.governor.snapshot()
    assert snap.outcomes == {}  # nothing was reserved, admitted or denied
    assert pipeline.audit_log.size == 0


def test_the_advertised_prompt_limit_is_reachable(build, local_model: ModelWorker) -> None:
    pipeline = build()
    limits = pipeline.limits(max_new_tokens=8)
    assert limits["context_tokens"] == 2048
    budget = limits["max_prompt_tokens"]
    assert isinstance(budget, int)
    assert budget > 500
    prompt = ""
    # coarse words first, then the finest pieces fill what is left
    for piece in (" restart", " a", "."):
        while local_model.count_tokens(prompt + piece) <= budget:
            prompt += piece
    assert local_model.count_tokens(prompt) >= budget - 1
    for _, category in PROMPTS:  # whichever overlay the route adds, it fits
        result = run_all(pipeline, [request(prompt, category, 8)])[0]
        assert "generate" in [s.name for s in result.stages]


def test_a_batch_starts_once_every_expected_caller_is_in_it(model_dir: Path) -> None:
    """With a 10 s window, only the caller rule can start these batches promptly: a lone caller
    runs at once, and a caller that just left (its next request on the way) is waited for."""
    worker = ModelWorker(model_dir, batch_window_s=10.0)
    config = worker.generation_config(2)

    async def scenario() -> tuple[Batched, list[Batched]]:
        with worker.caller():
            alone = await worker.generate("Open the file", config)
        # that caller left a moment ago, so a new caller stands for it: no wait
        with worker.caller():
            with worker.caller():  # a second caller inside holds the batch open for itself
                first = asyncio.create_task(worker.generate("Open the file", config))
                await asyncio.sleep(0.2)
                assert not first.done()
                second = await worker.generate("Return a new list", config)
            return alone, [await first, second]

    try:
        alone, pair = asyncio.run(scenario())
    finally:
        worker.close()
    assert alone.batch_size == 1
    assert alone.queued_s < 5.0
    assert [b.batch_size for b in pair] == [2, 2]
    assert max(b.queued_s for b in pair) < 5.0


def test_remembered_token_counts_are_the_tokenizers_counts(
    model_dir: Path, local_model: ModelWorker
) -> None:
    """Counts come from a bounded memo; more texts than it holds, asked twice, stay exact."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    texts = [f"restart service {i}. " * (1 + i % 7) for i in range(150)]
    expected = [len(tokenizer(t)["input_ids"]) for t in texts]
    assert [local_model.count_tokens(t) for t in texts] == expected
    assert [local_model.count_tokens(t) for t in reversed(texts)] == expected[::-1]


def test_a_closed_worker_refuses_jobs(model_dir: Path) -> None:
    worker = ModelWorker(model_dir)
    worker.close()
    with pytest.raises(WorkerClosedError):
        asyncio.run(worker.generate("hello", worker.generation_config(2)))
    with pytest.raises(WorkerClosedError):
        worker.run_background(lambda model, tokenizer: None)
