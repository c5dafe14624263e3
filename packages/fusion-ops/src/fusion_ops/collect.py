"""``fusion-budget collect``: run a scenario set N times per side and record raw samples.

A side is a *prompt strategy* (see :func:`parse_strategy`):

- ``plain`` – the scenario's base prompt, no overlay;
- ``overlay:NAME`` – the base prompt with the embedded overlay NAME applied;
- ``routed`` / ``routed:DIR`` – the router (embedded rules, or ``DIR`` holding routing.yaml and
  micro_overlays/) picks the overlay per scenario, as production would.

In CI the baseline is ``routed:<merge-base checkout>/configs/fusion`` and the candidate
``routed:configs/fusion``: both sides run through the same backend and tokenizer, so the report
measures what the change to overlays and routing rules costs. Runs are interleaved
(baseline, candidate, baseline, ...) so drift in a real backend hits both sides alike.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from fusion_ops import _validate
from fusion_ops.backends import Completion, CompletionBackend
from fusion_ops.errors import (
    BackendRequestError,
    CollectionAbortedError,
    InvalidInputError,
    SpendCapReachedError,
)
from fusion_ops.report import MAX_TOKENS, BudgetReport, Sample, ScenarioSamples
from fusion_ops.runtime_router import RuntimeRouter
from fusion_ops.spend import SpendCap

__all__ = [
    "PromptStrategy",
    "base_prompt",
    "call_prompts",
    "collect_report",
    "parse_strategy",
]

MAX_RUNS = 1000
MAX_CONCURRENCY = 64


def base_prompt(scenario: Mapping[str, Any]) -> str:
    """The task prompt a scenario stands for, before any overlay."""
    return (
        f"Scenario category: {scenario.get('category', 'unspecified')}\n"
        f"Complexity: {scenario.get('complexity', 'unspecified')}\n\n"
        f"{scenario.get('description') or '(no description)'}\n\n"
        "Analyze this scenario and provide recommendations."
    )


@dataclass(frozen=True)
class PromptStrategy:
    """How one side of the comparison turns a scenario into a prompt."""

    label: str
    router: RuntimeRouter | None = None
    forced_overlay: str | None = None

    @property
    def config_hash(self) -> str:
        if self.router is None:
            return hashlib.sha256(b"plain").hexdigest()
        if self.forced_overlay is not None:
            overlay = self.router.overlays[self.forced_overlay]
            return hashlib.sha256(f"overlay\x00{overlay.sha256}".encode()).hexdigest()
        return self.router.config_hash

    def prompt_for(self, scenario: Mapping[str, Any]) -> tuple[str, str | None]:
        """(prompt, overlay used or None)."""
        prompt = base_prompt(scenario)
        if self.router is None:
            return prompt, None
        overlay = self.forced_overlay
        if overlay is None:
            overlay = self.router.route_scenario(scenario).selected_overlay
            if overlay is None:
                return prompt, None
        return self.router.apply_overlay(prompt, overlay), overlay


def parse_strategy(spec: str) -> PromptStrategy:
    """``plain`` | ``overlay:NAME`` | ``routed`` | ``routed:DIR`` → :class:`PromptStrategy`."""
    _validate.text("strategy", spec, max_chars=4096)
    kind, _, arg = spec.partition(":")
    if kind == "plain" and not arg:
        return PromptStrategy("plain")
    if kind == "overlay" and arg:
        router = RuntimeRouter()
        if arg not in router.overlays:
            raise InvalidInputError(
                f"strategy {spec!r}: overlay {arg!r} is not one of {sorted(router.overlays)}"
            )
        return PromptStrategy(spec, router, arg)
    if kind == "routed":
        return PromptStrategy(spec, RuntimeRouter(arg or None))
    raise InvalidInputError(
        f"strategy must be plain, overlay:NAME, routed or routed:DIR, got {_validate.show(spec)}"
    )


def _check_completion(completion: object) -> None:
    """A backend that reports impossible usage is broken, not unlucky: the run stops."""
    if not isinstance(completion, Completion):
        raise BackendRequestError(f"backend returned {type(completion).__name__}, not Completion")
    try:
        for field in ("input_tokens", "output_tokens"):
            _validate.integer(field, getattr(completion, field), minimum=0, maximum=MAX_TOKENS)
        for field in ("cache_read_input_tokens", "cache_creation_input_tokens"):
            if getattr(completion, field) is not None:
                _validate.integer(field, getattr(completion, field), minimum=0, maximum=MAX_TOKENS)
        _validate.finite_number("latency_ms", completion.latency_ms, minimum=0)
    except InvalidInputError as exc:
        raise BackendRequestError(f"backend returned an invalid completion: {exc}") from exc


def _sample(backend: CompletionBackend, prompt: str, run: int, spend: SpendCap | None) -> Sample:
    """One call. Transient failures are data (error rate); a refused request or the cap stop."""
    reserved = spend.reserve(prompt) if spend is not None else None
    try:
        completion = backend.complete(prompt, run=run)
    except BaseException as exc:
        if spend is not None and reserved is not None:
            spend.release(reserved)  # a failed request is not billed
        if isinstance(exc, BackendRequestError) or not isinstance(exc, Exception):
            raise
        # a failed run is data (error rate), not a crash of the collector
        return Sample(ok=False, error=f"{type(exc).__name__}: {exc}"[:300])
    _check_completion(completion)
    if spend is not None and reserved is not None:
        spend.settle(reserved, completion)
    return Sample(
        ok=True,
        input_tokens=completion.input_tokens,
        output_tokens=completion.output_tokens,
        latency_ms=completion.latency_ms,
        cache_read_input_tokens=completion.cache_read_input_tokens,
        cache_creation_input_tokens=completion.cache_creation_input_tokens,
    )


def _run_tasks(
    tasks: Sequence[tuple[str, int]],
    backend: CompletionBackend,
    *,
    concurrency: int,
    spend: SpendCap | None,
    progress: Callable[[], None] | None,
) -> tuple[list[Sample | None], BaseException | None]:
    """Run (prompt, run) tasks in order with at most ``concurrency`` in flight.

    Returns the samples by task index (None where a task never ran) and the error that stopped the
    run, if any: after it no new task is started, the ones in flight finish.
    """
    results: list[Sample | None] = [None] * len(tasks)
    stop: BaseException | None = None
    if concurrency == 1:  # in the calling thread: no hand-off between threads per call
        for index, (prompt, run) in enumerate(tasks):
            try:
                results[index] = _sample(backend, prompt, run, spend)
            except BaseException as exc:
                return results, exc
            if progress is not None:
                progress()
        return results, None
    queue = iter(enumerate(tasks))
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="fusion-collect") as pool:
        pending: dict[Future[Sample], int] = {}

        def fill() -> None:
            while stop is None and len(pending) < concurrency:
                item = next(queue, None)
                if item is None:
                    return
                index, (prompt, run) = item
                pending[pool.submit(_sample, backend, prompt, run, spend)] = index

        fill()
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                index = pending.pop(future)
                try:
                    results[index] = future.result()
                except BaseException as exc:  # stop starting work; report it after the drain
                    stop = stop or exc
                    continue
                if progress is not None:
                    progress()
            fill()
    return results, stop


_Prepared = tuple[str, Mapping[str, Any], tuple[str, str | None], tuple[str, str | None]]


def _prepare(
    scenarios: Sequence[Mapping[str, Any]], baseline: PromptStrategy, candidate: PromptStrategy
) -> list[_Prepared]:
    """(id, scenario, (baseline prompt, overlay), (candidate prompt, overlay)) per scenario."""
    if not scenarios:
        raise InvalidInputError("scenarios must not be empty")
    prepared = []
    seen: set[str] = set()
    for i, scenario in enumerate(scenarios):
        if not isinstance(scenario, Mapping):
            raise InvalidInputError(
                f"scenarios[{i}] must be a mapping, got {_validate.show(scenario)}"
            )
        sid = str(scenario.get("id", f"scenario-{i}"))
        if sid in seen:
            raise InvalidInputError(f"scenarios[{i}].id {sid!r} is a duplicate")
        seen.add(sid)
        prepared.append(
            (sid, scenario, baseline.prompt_for(scenario), candidate.prompt_for(scenario))
        )
    return prepared


def _tasks(prepared: Sequence[_Prepared], runs: int) -> list[tuple[str, int]]:
    """Interleaved: run r of every scenario, baseline then candidate, before run r + 1."""
    _validate.integer("runs", runs, minimum=1, maximum=MAX_RUNS)
    return [
        (prompt, run)
        for run in range(runs)
        for _, _, (base_prompt_text, _), (cand_prompt_text, _) in prepared
        for prompt in (base_prompt_text, cand_prompt_text)
    ]


def call_prompts(
    scenarios: Sequence[Mapping[str, Any]],
    *,
    baseline: PromptStrategy,
    candidate: PromptStrategy,
    runs: int,
) -> list[str]:
    """The prompt of every call a collection run would make, in order (for cost estimates)."""
    return [prompt for prompt, _ in _tasks(_prepare(scenarios, baseline, candidate), runs)]


def collect_report(
    scenarios: Sequence[Mapping[str, Any]],
    *,
    baseline: PromptStrategy,
    candidate: PromptStrategy,
    backend: CompletionBackend,
    runs: int,
    baseline_git_sha: str | None = None,
    candidate_git_sha: str | None = None,
    created_at: dt.datetime | None = None,
    concurrency: int = 1,
    spend: SpendCap | None = None,
    progress: Callable[[], None] | None = None,
) -> BudgetReport:
    """Run every scenario ``runs`` times on each side; return the raw-sample report.

    At most ``concurrency`` calls are in flight; ``spend`` caps what the run may cost;
    ``progress`` is called once per finished call. A :class:`BackendRequestError` or the spend
    cap stops the run with :class:`CollectionAbortedError`, whose ``partial`` report records the
    calls that never ran as failed samples (so nothing that was paid for is lost).
    """
    _validate.integer("concurrency", concurrency, minimum=1, maximum=MAX_CONCURRENCY)
    prepared = _prepare(scenarios, baseline, candidate)
    tasks = _tasks(prepared, runs)
    results, stop = _run_tasks(
        tasks, backend, concurrency=concurrency, spend=spend, progress=progress
    )
    if stop is not None and not isinstance(stop, (BackendRequestError, SpendCapReachedError)):
        raise stop
    not_run = Sample(ok=False, error=f"not run: {stop}"[:300])
    samples: dict[str, tuple[list[Sample], list[Sample]]] = {p[0]: ([], []) for p in prepared}
    for index, result in enumerate(results):
        sid = prepared[(index // 2) % len(prepared)][0]
        samples[sid][index % 2].append(result or not_run)
    stamp = (created_at or dt.datetime.now(dt.timezone.utc)).isoformat()
    metadata = {
        "created_at": stamp,
        "model": backend.name,
        "tokenizer": getattr(backend, "tokenizer", "reported by the backend"),
        "runs_per_side": runs,
        "concurrency": concurrency,
        "baseline": {
            "git_sha": baseline_git_sha,
            "config_hash": baseline.config_hash,
            "prompt_strategy": baseline.label,
        },
        "candidate": {
            "git_sha": candidate_git_sha,
            "config_hash": candidate.config_hash,
            "prompt_strategy": candidate.label,
        },
    }
    if spend is not None:
        metadata["spend"] = spend.summary()
    if stop is not None:
        metadata["aborted"] = str(stop)[:300]
    report = BudgetReport(
        metadata=metadata,
        scenarios=tuple(
            ScenarioSamples(
                id=sid,
                category=str(scenario["category"]) if "category" in scenario else None,
                baseline=tuple(samples[sid][0]),
                candidate=tuple(samples[sid][1]),
                baseline_overlay=base[1],
                candidate_overlay=cand[1],
            )
            for sid, scenario, base, cand in prepared
        ),
    )
    if stop is not None:
        done = sum(r is not None for r in results)
        raise CollectionAbortedError(
            f"collection stopped after {done} of {len(tasks)} calls: {stop}", partial=report
        ) from stop
    return report
