"""The governed pipeline: one request through every member, each doing its own job.

1. fusion-ops routes the prompt to a micro-overlay and applies it; the whole overlaid prompt,
   counted by the serving model's own tokenizer, must fit the model's context with
   ``max_new_tokens``, or the request is refused (:class:`PipelineInputError`) before any cost;
2. fusion-ops' energy governor prices the worst case (those prompt tokens + ``max_new_tokens``,
   with the multipliers, which read the trust score and entropy of recent requests) and reserves
   it; a denied budget stops the request before any token is generated. The actual cost is
   priced the same way and can never exceed the reservation, so admitted spend stays within the
   governor's limits under any concurrency. ``emergency`` counts only with an ``approver``;
3. the model's worker generates the answer (micro-batched with concurrent requests) while
   cert-trajectory measures its tokens;
4. cert-coordination's judge scores the answer, when a judge is configured;
5. the signals map monotonically to resontinex-trust's InputVector and the gate decides; a
   latched drift alarm of hbt-core's watch (which checks on its own schedule, off this path)
   raises the risk;
6. the decision is appended to hbt-core's Merkle audit log, so it can be proven later. The
   append (a SQLite transaction and an Ed25519 signature, some milliseconds) runs on the
   pipeline's one audit thread, off the event loop, so it does not hold up the requests being
   gathered into the model's next batch; one thread keeps the records in decision order.

Every decision, including failures of a stage, ends in an audit record: nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from cert.coordination.evaluator import QualityEvaluator
from fusion_ops.errors import BudgetDeniedError, ReviewRequiredError, ScenarioError
from fusion_ops.governance import EnergyGovernor
from fusion_ops.runtime_router import RuntimeRouter
from hbt_core import AuditLog
from resontinex.pipeline.backends import Generation, GenerationBackend
from resontinex.pipeline.drift import DriftWatch
from resontinex.pipeline.errors import PipelineInputError
from resontinex.pipeline.signals import MonitoredSignals, SignalMapping, to_input_vector
from resontinex.trust import TrustMonitor, route_to_resontinex

log = logging.getLogger("resontinex.pipeline")

MAX_PROMPT_CHARS = 20_000
MAX_NEW_TOKENS = 512
MAX_APPROVER_CHARS = 200


@dataclass(frozen=True)
class PipelineRequest:
    """One request: the prompt and what the router and governor need to know about it."""

    prompt: str
    category: str = "service_management"
    complexity: float = 0.5
    max_new_tokens: int = 48
    emergency: bool = False
    # who authorised emergency work; without one, emergency=True is an ordinary request
    approver: str | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        if not isinstance(self.prompt, str) or not self.prompt.strip():
            raise PipelineInputError(f"prompt must be a non-empty string, got {self.prompt!r:.60}")
        if len(self.prompt) > MAX_PROMPT_CHARS:
            raise PipelineInputError(
                f"prompt has {len(self.prompt)} characters, limit {MAX_PROMPT_CHARS}"
            )
        if (
            isinstance(self.max_new_tokens, bool)
            or not isinstance(self.max_new_tokens, int)
            or not 1 <= self.max_new_tokens <= MAX_NEW_TOKENS
        ):
            raise PipelineInputError(
                f"max_new_tokens must be an integer in [1, {MAX_NEW_TOKENS}], got {self.max_new_tokens!r}"
            )
        if not isinstance(self.emergency, bool):
            raise PipelineInputError(f"emergency must be a bool, got {self.emergency!r}")
        if self.approver is not None and (
            not isinstance(self.approver, str)
            or not self.approver.strip()
            or len(self.approver) > MAX_APPROVER_CHARS
            or not self.approver.isprintable()
        ):
            raise PipelineInputError(
                f"approver must be a printable, non-empty string of at most "
                f"{MAX_APPROVER_CHARS} characters, got {type(self.approver).__name__}"
            )

    @property
    def emergency_approved(self) -> bool:
        """Emergency work that may pass the review threshold: flagged and approved by someone."""
        return self.emergency and self.approver is not None


@dataclass
class StageRecord:
    """What one stage produced and how long it took."""

    name: str
    latency_s: float
    output: dict[str, Any]


@dataclass
class PipelineResult:
    """The decision and everything that led to it."""

    request_id: str
    decision: str  # execute | review | defer | abort
    reason: str
    answer: str | None
    stages: list[StageRecord]
    cost_units: float
    audit_index: int | None = None

    def stage(self, name: str) -> StageRecord:
        return next(s for s in self.stages if s.name == name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Recent:
    """Trust scores and entropy bands of recent requests, read by the governor's multipliers."""

    def __init__(self, size: int = 20) -> None:
        self.trust: deque[float] = deque(maxlen=size)
        self.band: deque[float] = deque(maxlen=size)

    def mean_trust(self) -> float:
        return sum(self.trust) / len(self.trust) if self.trust else 1.0

    def mean_band(self) -> float:
        return sum(self.band) / len(self.band) if self.band else 0.0


class GovernedPipeline:
    """Composes the members; owns no policy of its own beyond the signal mapping."""

    def __init__(
        self,
        *,
        backend: GenerationBackend,
        router: RuntimeRouter,
        governor: EnergyGovernor,
        trust: TrustMonitor,
        audit_log: AuditLog,
        drift: DriftWatch | None = None,
        judge: QualityEvaluator | None = None,
        mapping: SignalMapping | None = None,
        cost_per_token: float = 1.0,
        owns_model: bool = False,
    ) -> None:
        self.backend = backend
        self.router = router
        self.governor = governor
        self.trust = trust
        self.audit_log = audit_log
        self.drift = drift
        self.judge = judge
        self.mapping = mapping or SignalMapping()
        self.cost_per_token = cost_per_token
        self.recent = _Recent()
        self.owns_model = owns_model
        self._auditor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pipeline-audit")

    async def run(self, request: PipelineRequest) -> PipelineResult:
        """Take one request through every stage; every decision ends in an audit record.

        A malformed request (unknown category, complexity out of range, a prompt that with its
        overlay does not fit the model's context) raises :class:`PipelineInputError` from the
        first stage, before any cost is reserved: no decision was made, so none is logged.
        """
        with self.backend.local.caller():
            result = await self._run(request)
        log.info(
            "pipeline decision",
            extra={
                "request_id": request.request_id,
                "decision": result.decision,
                "reason": result.reason,
            },
        )
        return result

    async def _run(self, request: PipelineRequest) -> PipelineResult:
        stages: list[StageRecord] = []
        try:
            decision, reason, answer, cost = await self._decide(request, stages)
        except ScenarioError as exc:  # only the route stage validates scenarios
            raise PipelineInputError(str(exc)) from exc
        result = PipelineResult(request.request_id, decision, reason, answer, stages, cost)
        # in this request's context, so the append's logs carry its correlation id
        append = contextvars.copy_context().run
        appended = asyncio.get_running_loop().run_in_executor(
            self._auditor, append, self._audit, request, result
        )
        # shielded: a caller that goes away now still leaves its decision in the log
        result.audit_index = await asyncio.shield(appended)
        return result

    async def _decide(
        self, request: PipelineRequest, stages: list[StageRecord]
    ) -> tuple[str, str, str | None, float]:
        """(decision, reason, answer, cost) — the stages in order, stopping where one says no."""
        # 1. route and apply the overlay; the whole prompt must fit the model's context
        with _stage(stages, "route") as out:
            routing = self.router.route_scenario(self._scenario(request))
            prompt = request.prompt
            if routing.selected_overlay is not None:
                prompt = self.router.apply_overlay(
                    base_prompt=request.prompt, overlay_name=routing.selected_overlay
                )
            out.update(overlay=routing.selected_overlay, confidence=routing.confidence)
            prompt_tokens = self.backend.local.check_fits(prompt, request.max_new_tokens)
            out["prompt_tokens"] = prompt_tokens

        # 2. reserve the worst case; a denied budget stops here, before any token
        with _stage(stages, "budget") as out:
            estimate = self.governor.estimate(
                (prompt_tokens + request.max_new_tokens) * self.cost_per_token,
                complexity=request.complexity,
                trust_score=self.recent.mean_trust(),
                entropy=self.recent.mean_band(),
                emergency=request.emergency_approved,
            )
            out.update(estimate=estimate.cost, multiplier=estimate.multiplier)
            out["applied"] = [m.factor for m in estimate.breakdown if m.applied]
            if request.emergency:
                out["emergency"] = (
                    f"approved by {request.approver}"
                    if request.emergency_approved
                    else "not approved (no approver): an ordinary request"
                )
            try:
                reservation = self.governor.request(
                    estimate, reviewed_by=request.approver if request.emergency_approved else None
                )
            except ReviewRequiredError as exc:
                out["denied"] = str(exc)
                return "review", f"budget: {exc}", None, 0.0
            except BudgetDeniedError as exc:
                out["denied"] = str(exc)
                return "abort", f"budget: {exc}", None, 0.0

        # 3. generate and monitor; a failing (or cancelled) generation releases the reservation
        with _stage(stages, "generate") as out:
            try:
                generation = await self.backend.generate(
                    prompt, max_new_tokens=request.max_new_tokens
                )
            except Exception as exc:
                self.governor.release(reservation)
                log.exception("generation failed", extra={"request_id": request.request_id})
                out["error"] = f"{type(exc).__name__}: {exc}"
                return "abort", f"backend error: {type(exc).__name__}", None, 0.0
            except BaseException:
                self.governor.release(reservation)
                raise
            cost = self._actual_cost(generation, estimate.multiplier, reservation.cost, out)
            self.governor.commit(reservation, actual_cost=cost)
            trajectory = generation.trajectory
            out.update(
                model=generation.model_id,
                output_tokens=generation.output_tokens,
                perplexity=trajectory.perplexity,
                mean_entropy=trajectory.mean_entropy,
                passed_quality_check=trajectory.passed_quality_check,
                failed_checks=list(trajectory.failed_checks),
                batch_size=generation.batch_size,
                queued_s=generation.queued_s,
            )

        # 4. judge (optional); an unavailable judge is flagged and alignment uses the prior
        with _stage(stages, "judge") as out:
            judge_score = await self._judge(request, generation.text, out)

        # 5. the gate decides
        with _stage(stages, "trust") as out:
            signals = MonitoredSignals(
                mean_entropy_nats=trajectory.mean_entropy,
                perplexity=trajectory.perplexity,
                vocab_size=generation.vocab_size,
                judge_score=judge_score,
                drift_flagged=self.drift is not None and self.drift.flagged,
            )
            vector = to_input_vector(signals, self.mapping)
            gate = self.trust.evaluate(
                vector.alignment_score,
                vector.epistemic_risk,
                vector.confidence_band,
                context={"request_id": request.request_id},
            )
            self.recent.trust.append(gate.trust_score)
            self.recent.band.append(vector.confidence_band)
            out.update(
                inputs={
                    "alignment_score": vector.alignment_score,
                    "epistemic_risk": vector.epistemic_risk,
                    "confidence_band": vector.confidence_band,
                },
                signals=asdict(signals),
                trust_score=gate.trust_score,
                tier=gate.risk_tier.value,
                decision=gate.decision.value,
                rule=gate.rule_fired,
                config_hash=self.trust.config.config_hash,
            )

        return (
            route_to_resontinex(gate.decision),
            f"trust gate: {gate.rule_fired}",
            generation.text,
            cost,
        )

    def _actual_cost(
        self, generation: Generation, multiplier: float, reserved: float, out: dict[str, Any]
    ) -> float:
        """Tokens used, priced like the reservation. A local model counts both with its own
        tokenizer and stops at ``max_new_tokens``, so this never exceeds the reservation; a
        remote backend bills by its own tokenizer, and an excess is committed (it was spent),
        flagged in the stage output and logged."""
        cost = (generation.input_tokens + generation.output_tokens) * self.cost_per_token
        cost *= multiplier
        if cost > reserved:
            out["overrun"] = cost - reserved
            log.warning(
                "actual cost above the reservation",
                extra={"reserved": reserved, "actual": cost, "model": generation.model_id},
            )
        return cost

    def limits(self, max_new_tokens: int = 48) -> dict[str, int | None]:
        """What a request may hold: the longest prompt (in the model's tokens) that fits the
        context with ``max_new_tokens`` and the longest overlay any route can add."""
        local = self.backend.local
        overlay = max(
            (
                local.count_tokens(self.router.apply_overlay(base_prompt="x", overlay_name=name))
                - local.count_tokens("x")
                for name in self.router.overlays
            ),
            default=0,
        )
        context = local.context_tokens
        return {
            "context_tokens": context,
            "max_overlay_tokens": overlay,
            "max_new_tokens": max_new_tokens,
            # two tokens of slack: BPE may merge across the seam between overlay and prompt
            "max_prompt_tokens": None
            if context is None
            else max(0, context - max_new_tokens - overlay - 2),
            "max_prompt_chars": MAX_PROMPT_CHARS,
        }

    def close(self) -> None:
        """Stop the drift schedule, close the stores (latch, ledger, audit log) and, if this
        pipeline owns it, the model."""
        if self.drift is not None:
            self.drift.close()
        self._auditor.shutdown(wait=True)  # appends already queued are written first
        self.governor.close()
        self.audit_log.close()
        if self.owns_model:
            self.backend.local.close()

    @staticmethod
    def _scenario(request: PipelineRequest) -> dict[str, Any]:
        return {
            "category": request.category,
            "complexity": request.complexity,
            "description": request.prompt,
        }

    async def _judge(
        self, request: PipelineRequest, answer: str, out: dict[str, Any]
    ) -> float | None:
        if self.judge is None:
            out["status"] = "no judge configured"
            return None
        try:
            score = await self.judge.evaluate(request.prompt, answer)
        except Exception as exc:
            log.warning(
                "judge unavailable",
                extra={"request_id": request.request_id, "error": type(exc).__name__},
            )
            out["status"] = f"judge unavailable: {type(exc).__name__}"
            return None
        if score is None:
            out["status"] = "judge reply could not be parsed"
            return None
        out.update(status="scored", score=score.overall, criteria=dict(score.criteria))
        return score.overall

    # ------------------------------------------------------------------ audit

    def _audit(self, request: PipelineRequest, result: PipelineResult) -> int:
        gate = next((s.output for s in result.stages if s.name == "trust"), {})
        record = {
            "event": "pipeline_decision",
            "request_id": request.request_id,
            "ts": time.time(),
            "prompt_sha256": hashlib.sha256(request.prompt.encode()).hexdigest(),
            "answer_sha256": None
            if result.answer is None
            else hashlib.sha256(result.answer.encode()).hexdigest(),
            "model": self.backend.model_id,
            "decision": result.decision,
            "reason": result.reason,
            "trust_score": gate.get("trust_score"),
            "inputs": gate.get("inputs"),
            "trust_config": gate.get("config_hash"),
            "cost_units": result.cost_units,
            "emergency": request.emergency,
            "approver": request.approver,
            "stages": [s.name for s in result.stages],
        }
        return self.audit_log.append(record)


@contextmanager
def _stage(stages: list[StageRecord], name: str) -> Iterator[dict[str, Any]]:
    """Time one stage and record what it put in its output dict, even when it stops early."""
    started = time.perf_counter()
    out: dict[str, Any] = {}
    try:
        yield out
    finally:
        stages.append(StageRecord(name, time.perf_counter() - started, out))
