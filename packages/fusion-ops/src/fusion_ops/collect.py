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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fusion_ops import _validate
from fusion_ops.backends import CompletionBackend
from fusion_ops.errors import InvalidInputError
from fusion_ops.report import MAX_TOKENS, BudgetReport, Sample, ScenarioSamples
from fusion_ops.runtime_router import RuntimeRouter
from fusion_ops.tokenizer import TOKENIZER_NAME

__all__ = ["PromptStrategy", "base_prompt", "collect_report", "parse_strategy"]

MAX_RUNS = 1000


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


def _sample(backend: CompletionBackend, prompt: str, run: int) -> Sample:
    try:
        completion = backend.complete(prompt, run=run)
    except Exception as exc:  # a failed run is data (error rate), not a crash of the collector
        return Sample(ok=False, error=f"{type(exc).__name__}: {exc}"[:300])
    try:  # a backend's usage numbers are input too: a NaN or negative count is a failed run
        usage = (
            _validate.integer(
                "input_tokens", completion.input_tokens, minimum=0, maximum=MAX_TOKENS
            ),
            _validate.integer(
                "output_tokens", completion.output_tokens, minimum=0, maximum=MAX_TOKENS
            ),
            _validate.finite_number("latency_ms", completion.latency_ms, minimum=0),
        )
    except (InvalidInputError, AttributeError) as exc:
        return Sample(ok=False, error=f"invalid completion from the backend: {exc}"[:300])
    return Sample(ok=True, input_tokens=usage[0], output_tokens=usage[1], latency_ms=usage[2])


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
) -> BudgetReport:
    """Run every scenario ``runs`` times on each side; return the raw-sample report."""
    _validate.integer("runs", runs, minimum=1, maximum=MAX_RUNS)
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
    samples: dict[str, tuple[list[Sample], list[Sample]]] = {sid: ([], []) for sid in seen}
    for run in range(runs):
        for sid, _, (base_prompt_text, _), (cand_prompt_text, _) in prepared:
            samples[sid][0].append(_sample(backend, base_prompt_text, run))
            samples[sid][1].append(_sample(backend, cand_prompt_text, run))
    stamp = (created_at or dt.datetime.now(dt.timezone.utc)).isoformat()
    metadata = {
        "created_at": stamp,
        "model": backend.name,
        "tokenizer": TOKENIZER_NAME,
        "runs_per_side": runs,
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
    return BudgetReport(
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
