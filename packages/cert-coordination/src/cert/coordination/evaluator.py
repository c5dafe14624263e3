"""LLM-as-judge quality evaluation with structured output, parse-failure accounting and drift.

The judge is asked for one score in [0, 1] per criterion through a JSON schema (the backend turns
it into the API's structured output or a forced tool call). The overall score is *recomputed* here
as the weighted mean of the criterion scores; whatever overall number the model might add is
ignored. A reply that is not valid JSON, misses a criterion or holds a score outside [0, 1] yields
``None`` and increments :attr:`QualityEvaluator.parse_failures`: it is never replaced by 0.5.

Position bias control (``debias_order=True``): the rubric is presented twice, criteria in forward
and in reversed order, and each criterion's two scores are averaged (two judge calls per answer).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from prometheus_client import CollectorRegistry

from cert.coordination._validate import check_float, check_int, check_text
from cert.coordination.backend import ChatBackend, ChatMessage
from cert.coordination.drift import DriftStatus, JudgeDriftDetector
from cert.coordination.errors import CoordinationInputError
from cert.coordination.telemetry import CoordinationTelemetry
from cert.runtime.logging import get_logger

JUDGE_PROMPT_VERSION = "judge-v1"
DEFAULT_CRITERIA: Mapping[str, float] = {
    "correctness": 0.4,
    "completeness": 0.3,
    "clarity": 0.3,
}
_CRITERION_HELP = {
    "correctness": "factual and logical accuracy",
    "completeness": "covers what the task asks for",
    "clarity": "clear, well organised, appropriately concise",
}
_log = get_logger("cert.coordination.evaluator")


@dataclass(frozen=True)
class QualityScore:
    """One judged answer: per-criterion scores and their weighted mean."""

    overall: float
    criteria: dict[str, float]
    judge_model: str
    judge_calls: int = 1
    order_disagreement: float | None = None


@dataclass(frozen=True)
class JudgeOutcome:
    """A judgement with its cost: ``score`` is None when a judge reply failed to parse."""

    score: QualityScore | None
    judge_calls: int
    cost_usd: Decimal | None


def sum_costs(costs: Sequence[Decimal | None]) -> Decimal | None:
    """Sum of costs, or None if any is unknown (an unpriced model is never counted as $0)."""
    if any(cost is None for cost in costs):
        return None
    return sum((cost for cost in costs if cost is not None), Decimal(0))


@dataclass
class EvaluatorStats:
    verdicts: int = 0
    parse_failures: int = 0
    judge_calls: int = 0
    failure_examples: list[str] = field(default_factory=list)


def _checked_criteria(criteria: Mapping[str, float]) -> dict[str, float]:
    if not isinstance(criteria, Mapping) or not criteria:
        raise CoordinationInputError("criteria must be a non-empty mapping of name to weight")
    checked = {}
    for name, weight in criteria.items():
        check_text("criterion name", name, max_chars=64)
        if not name.replace("_", "").isalnum():
            raise CoordinationInputError(
                f"criterion names must be alphanumeric/underscore, got {name!r}"
            )
        checked[name] = check_float(
            f"criteria[{name!r}]", weight, minimum=0.0, maximum=1e6, allow_minimum=False
        )
    return checked


DEFAULT_ROLE = "answer"
BASELINE_ROLE = "baseline"


def team_role(strategy: str, num_agents: int) -> str:
    """The drift-stream role of a team's answers: each strategy and team size is its own."""
    return f"team:{strategy}:{num_agents}"


class QualityEvaluator:
    """Scores an answer to a task with an LLM judge (any :class:`ChatBackend`)."""

    def __init__(
        self,
        backend: ChatBackend,
        *,
        judge_model: str | None = None,
        criteria: Mapping[str, float] | None = None,
        criterion_descriptions: Mapping[str, str] | None = None,
        debias_order: bool = False,
        max_tokens: int = 512,
        drift_detector: JudgeDriftDetector | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        if not isinstance(backend, ChatBackend):
            raise CoordinationInputError(
                f"backend must implement ChatBackend, got {type(backend).__name__}"
            )
        self.backend = backend
        self.judge_model = (
            backend.default_model
            if judge_model is None
            else check_text("judge_model", judge_model, max_chars=200)
        )
        self.criteria = _checked_criteria(DEFAULT_CRITERIA if criteria is None else criteria)
        self.descriptions = {**_CRITERION_HELP, **dict(criterion_descriptions or {})}
        if not isinstance(debias_order, bool):
            raise CoordinationInputError(f"debias_order must be a bool, got {debias_order!r}")
        self.debias_order = debias_order
        self.max_tokens = check_int("max_tokens", max_tokens, minimum=1, maximum=128_000)
        self.drift = drift_detector or JudgeDriftDetector()
        self.telemetry = CoordinationTelemetry(registry)
        self.stats = EvaluatorStats()

    # ------------------------------------------------------------------ identity for cache keys
    @property
    def criteria_hash(self) -> str:
        """Hash of criteria, weights, descriptions, judge prompt version and bias control."""
        payload = {
            "criteria": self.criteria,
            "descriptions": {k: self.descriptions.get(k, "") for k in self.criteria},
            "prompt": JUDGE_PROMPT_VERSION,
            "debias_order": self.debias_order,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def calls_per_answer(self) -> int:
        return 2 if self.debias_order else 1

    @property
    def parse_failures(self) -> int:
        return self.stats.parse_failures

    # ------------------------------------------------------------------ judging
    def schema(self) -> dict[str, Any]:
        props = {
            name: {
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "description": self.descriptions.get(name, name),
            }
            for name in self.criteria
        }
        return {
            "type": "object",
            "properties": props,
            "required": list(self.criteria),
            "additionalProperties": False,
        }

    def _prompt(self, task: str, answer: str, order: list[str]) -> str:
        rubric = "\n".join(f"- {name}: {self.descriptions.get(name, name)}" for name in order)
        return (
            "You are a strict grader. Score the ANSWER to the TASK on each criterion from 0 "
            "(worst) to 1 (best). Judge substance, not length.\n\n"
            f"Criteria:\n{rubric}\n\n<task>\n{task}\n</task>\n\n<answer>\n{answer}\n</answer>\n\n"
            "Reply only with a JSON object mapping each criterion name to its score."
        )

    def parse_scores(self, text: str) -> dict[str, float] | None:
        """Criterion scores from a judge reply, or None if the reply is not a valid verdict."""
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, TypeError):
            return None
        if not isinstance(data, dict):
            return None
        scores = {}
        for name in self.criteria:
            value = data.get(name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return None
            if not math.isfinite(value) or not 0.0 <= value <= 1.0:
                return None
            scores[name] = float(value)
        return scores

    def overall(self, scores: Mapping[str, float]) -> float:
        total = sum(self.criteria.values())
        return sum(scores[name] * weight for name, weight in self.criteria.items()) / total

    async def _judge_once(
        self, task: str, answer: str, order: list[str], agent: str
    ) -> tuple[dict[str, float] | None, Decimal | None]:
        result = await self.backend.complete(
            [ChatMessage("user", self._prompt(task, answer, order))],
            max_tokens=self.max_tokens,
            model=self.judge_model,
            agent=agent,
            json_schema=self.schema(),
        )
        self.stats.judge_calls += 1
        scores = self.parse_scores(result.text)
        if scores is None:
            self.stats.parse_failures += 1
            if len(self.stats.failure_examples) < 5:
                self.stats.failure_examples.append(result.text[:200])
            self.telemetry.judge_parse_failures.inc()
            self.telemetry.judge_verdicts.labels("parse_failure").inc()
            _log.warning("judge reply not parseable", extra={"judge_model": self.judge_model})
        else:
            self.telemetry.judge_verdicts.labels("ok").inc()
        cost = result.extra.get("cost_usd") if result.extra else None
        return scores, cost

    async def evaluate(
        self, task: str, answer: str, *, agent: str = "judge", role: str = DEFAULT_ROLE
    ) -> QualityScore | None:
        """Judge ``answer``; None (counted in ``parse_failures``) if any judge reply is invalid.

        ``role`` names who produced the answer (``"baseline"`` for a lone agent, a strategy
        for a team): the drift detector keeps one stream per (task, role), because answers of
        different producers score differently by design, which is not judge drift.
        """
        return (await self.evaluate_detailed(task, answer, agent=agent, role=role)).score

    async def evaluate_detailed(
        self, task: str, answer: str, *, agent: str = "judge", role: str = DEFAULT_ROLE
    ) -> JudgeOutcome:
        """Like :meth:`evaluate`, also returning the judge calls made and their cost."""
        check_text("task", task)
        check_text("role", role, max_chars=200)
        if not isinstance(answer, str):
            raise CoordinationInputError(f"answer must be a string, got {type(answer).__name__}")
        if not answer.strip():
            answer = "(empty answer)"
        forward = list(self.criteria)
        orders = [forward, forward[::-1]] if self.debias_order else [forward]
        runs = await asyncio.gather(*(self._judge_once(task, answer, o, agent) for o in orders))
        cost = sum_costs([c for _, c in runs])
        valid = [scores for scores, _ in runs if scores is not None]
        if len(valid) < len(runs):
            return JudgeOutcome(None, len(runs), cost)
        averaged = {name: sum(run[name] for run in valid) / len(valid) for name in self.criteria}
        disagreement = None
        if len(valid) == 2:
            disagreement = max(abs(valid[0][n] - valid[1][n]) for n in self.criteria)
        score = QualityScore(
            overall=self.overall(averaged),
            criteria=averaged,
            judge_model=self.judge_model,
            judge_calls=len(runs),
            order_disagreement=disagreement,
        )
        self.stats.verdicts += 1
        status = self.drift.update((task, role), score.overall)
        if status.alarm and status.alarm_at == status.scores_seen:
            self.telemetry.drift_alarms.inc()
            _log.warning(
                "judge score drift detected", extra={"task_chars": len(task), "role": role}
            )
        return JudgeOutcome(score, len(runs), cost)

    def drift_status(self, task: str, role: str = DEFAULT_ROLE) -> DriftStatus:
        """The drift detector's state for the (``task``, ``role``) stream of overall scores."""
        return self.drift.status((task, role))
