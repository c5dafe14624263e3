"""Multi-agent strategies and the coordination measurement.

Requests per strategy run, with N agents (``num_agents``) and R debate rounds:

=============  ==========================================  ===============================
strategy       agent calls                                 concurrency
=============  ==========================================  ===============================
sequential     N (agent k improves agent k-1's answer)     one after another
parallel       N + 1 (N independent answers, 1 aggregator) the N answers run concurrently
debate         N·R (+1 with ``debate_resolution="synthesis"``;  each round's N calls concurrent
               0 extra with ``"vote"``)
=============  ==========================================  ===============================

A measurement (:meth:`CoordinationOrchestrator.measure_coordination`) adds, per repeat, the judge
calls on the final answer (1, or 2 with ``debias_order``), plus the baseline on a cache miss:
N answers + N judge verdicts (x2 with ``debias_order``). "vote" picks the final-round answer most
similar to the others (the medoid under the consensus similarity), without an extra request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from cert.coordination import prompts
from cert.coordination._validate import check_choice, check_int, check_text
from cert.coordination.backend import ChatBackend, ChatMessage, ChatResult
from cert.coordination.baseline import BaselineMeasurer
from cert.coordination.errors import CoordinationError, CoordinationInputError
from cert.coordination.evaluator import QualityEvaluator, sum_costs, team_role
from cert.coordination.metrics import CoordinationMetrics, compute_metrics, cosine_similarity
from cert.runtime.logging import correlation_scope, get_logger

STRATEGIES = ("sequential", "parallel", "debate")
Strategy = Literal["sequential", "parallel", "debate"]
_log = get_logger("cert.coordination.orchestrator")


@dataclass
class StrategyRun:
    """One execution of a strategy: the final answer, the agents' answers and what it cost."""

    strategy: str
    final_answer: str
    agent_answers: list[str]
    requests: int
    cost_usd: Decimal | None
    latency_s: float
    transcript: list[dict[str, str]] = field(default_factory=list)


def expected_requests(
    strategy: str, num_agents: int, rounds: int = 2, resolution: str = "synthesis"
) -> int:
    """Agent requests one run of ``strategy`` makes (see the module table)."""
    if strategy == "sequential":
        return num_agents
    if strategy == "parallel":
        return num_agents + 1
    return num_agents * rounds + (1 if resolution == "synthesis" else 0)


def _add_cost(total: Decimal | None, result: ChatResult) -> Decimal | None:
    return sum_costs([total, result.extra.get("cost_usd") if result.extra else None])


class CoordinationOrchestrator:
    """Runs agents under a strategy and measures γ, Ω and consensus against a baseline."""

    def __init__(
        self,
        *,
        client: ChatBackend,
        baseline_measurer: BaselineMeasurer,
        evaluator: QualityEvaluator,
        max_tokens: int = 1024,
        debate_rounds: int = 2,
        debate_resolution: Literal["synthesis", "vote"] = "synthesis",
        model: str | None = None,
        n_boot: int = 2000,
        seed: int = 0,
    ) -> None:
        if not isinstance(client, ChatBackend):
            raise CoordinationInputError(
                f"client must implement ChatBackend, got {type(client).__name__}"
            )
        self.client = client
        self.baseline = baseline_measurer
        self.evaluator = evaluator
        self.max_tokens = check_int("max_tokens", max_tokens, minimum=1, maximum=128_000)
        self.debate_rounds = check_int("debate_rounds", debate_rounds, minimum=1, maximum=10)
        self.debate_resolution = check_choice(
            "debate_resolution", debate_resolution, ("synthesis", "vote")
        )
        self.model = model
        self.n_boot = check_int("n_boot", n_boot, minimum=100, maximum=1_000_000)
        self.seed = check_int("seed", seed, minimum=0, maximum=2**32 - 1)

    # ------------------------------------------------------------------ one agent call
    async def _ask(self, agent: int | str, prompt: str, run: StrategyRun, *, index: int = 1) -> str:
        label = agent if isinstance(agent, str) else f"agent-{agent}"
        result = await self.client.complete(
            [ChatMessage("user", prompt)],
            system=prompts.AGENT_SYSTEM.format(index=index),
            max_tokens=self.max_tokens,
            model=self.model,
            agent=label,
        )
        run.requests += 1
        run.cost_usd = _add_cost(run.cost_usd, result)
        run.transcript.append({"agent": label, "answer": result.text})
        return result.text

    # ------------------------------------------------------------------ strategies
    async def _sequential(self, task: str, n: int, run: StrategyRun) -> None:
        answer = await self._ask(1, prompts.solo(task), run, index=1)
        run.agent_answers.append(answer)
        for k in range(2, n + 1):
            answer = await self._ask(k, prompts.improve(task, answer), run, index=k)
            run.agent_answers.append(answer)
        run.final_answer = answer

    async def _parallel(self, task: str, n: int, run: StrategyRun) -> None:
        answers = await asyncio.gather(
            *(self._ask(k, prompts.solo(task), run, index=k) for k in range(1, n + 1))
        )
        run.agent_answers.extend(answers)
        run.final_answer = await self._ask("aggregator", prompts.aggregate(task, answers), run)

    async def _debate(self, task: str, n: int, run: StrategyRun) -> None:
        positions = list(
            await asyncio.gather(
                *(self._ask(k, prompts.solo(task), run, index=k) for k in range(1, n + 1))
            )
        )
        for round_no in range(2, self.debate_rounds + 1):
            current = positions
            positions = list(
                await asyncio.gather(
                    *(
                        self._ask(
                            k,
                            prompts.debate(
                                task, current[k - 1], current[: k - 1] + current[k:], round_no
                            ),
                            run,
                            index=k,
                        )
                        for k in range(1, n + 1)
                    )
                )
            )
        run.agent_answers.extend(positions)
        if self.debate_resolution == "synthesis":
            run.final_answer = await self._ask(
                "synthesizer", prompts.aggregate(task, positions), run
            )
        else:
            run.final_answer = majority_answer(positions)

    async def run_strategy(self, task: str, num_agents: int, strategy: str) -> StrategyRun:
        """Execute one strategy run (no judging, no baseline)."""
        check_text("task", task)
        check_int("num_agents", num_agents, minimum=2, maximum=16)
        check_choice("strategy", strategy, STRATEGIES)
        run = StrategyRun(strategy, "", [], 0, Decimal(0), 0.0)
        started = time.perf_counter()
        await {"sequential": self._sequential, "parallel": self._parallel, "debate": self._debate}[
            strategy
        ](task, num_agents, run)
        run.latency_s = time.perf_counter() - started
        return run

    # ------------------------------------------------------------------ measurement
    async def measure_coordination(
        self,
        task: str,
        num_agents: int = 3,
        strategy: Strategy = "parallel",
        *,
        repeats: int = 1,
    ) -> CoordinationMetrics:
        """Run ``strategy`` ``repeats`` times, judge each final answer and compare to baseline."""
        check_text("task", task)
        check_int("num_agents", num_agents, minimum=2, maximum=16)
        check_choice("strategy", strategy, STRATEGIES)
        check_int("repeats", repeats, minimum=1, maximum=100)
        with correlation_scope() as cid:
            started = time.perf_counter()
            failures_before = self.evaluator.parse_failures
            baseline = await self.baseline.measure(task, num_agents, model=self.model)
            runs: list[StrategyRun] = []
            scores: list[float] = []
            costs: list[Decimal | None] = [baseline.cost_usd]
            for _ in range(repeats):
                run = await self.run_strategy(task, num_agents, strategy)
                runs.append(run)
                outcome = await self.evaluator.evaluate_detailed(
                    task, run.final_answer, role=team_role(strategy, num_agents)
                )
                costs += [run.cost_usd, outcome.cost_usd]
                if outcome.score is not None:
                    scores.append(outcome.score.overall)
            if not scores:
                raise CoordinationError(
                    f"every judge verdict on the {repeats} coordinated answer(s) failed to parse",
                    context={"correlation_id": cid},
                )
            metrics = compute_metrics(
                task=task,
                strategy=strategy,
                num_agents=num_agents,
                coordinated_scores=scores,
                baseline_scores=baseline.scores,
                agent_answers_per_run=[run.agent_answers for run in runs],
                n_boot=self.n_boot,
                seed=self.seed,
            )
            judge_calls = repeats * self.evaluator.calls_per_answer
            metrics.api_calls = sum(run.requests for run in runs) + judge_calls + baseline.api_calls
            metrics.baseline_cached = baseline.cached
            metrics.judge_parse_failures = self.evaluator.parse_failures - failures_before
            metrics.cost_usd = sum_costs(costs)
            metrics.latency_s = time.perf_counter() - started
            metrics.final_answer = runs[-1].final_answer
            metrics.details.update(
                {
                    "correlation_id": cid,
                    "strategy_requests_per_run": [run.requests for run in runs],
                    "judge_calls": judge_calls,
                    "baseline_api_calls": baseline.api_calls,
                    "baseline_judge_failures": baseline.judge_failures,
                }
            )
            _log.info(
                "coordination measured",
                extra={
                    "strategy": strategy,
                    "num_agents": num_agents,
                    "gamma": round(metrics.gamma, 4),
                    "omega": round(metrics.omega, 4),
                    "api_calls": metrics.api_calls,
                },
            )
            return metrics


def majority_answer(answers: Sequence[str]) -> str:
    """The answer with the highest mean similarity to the others (first one on ties)."""
    if len(answers) == 1:
        return answers[0]

    def support(i: int) -> float:
        return sum(cosine_similarity(answers[i], b) for j, b in enumerate(answers) if j != i)

    return answers[max(range(len(answers)), key=support)]
