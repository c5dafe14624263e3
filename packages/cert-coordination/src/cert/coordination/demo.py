"""Offline showcase: a full coordination measurement through the real SDK and a fake API.

Nothing here is a language model. The agents and the judge are a *scripted responder* behind
:class:`~cert.coordination.testing.FakeAnthropicServer`: an agent answer is a random draw of
sentences from a fixed list of true and false statements about the task, an aggregator unions the
true statements it sees, and the "judge" scores coverage of the true statements and the absence of
false ones. Coordination therefore helps *by construction*; what the demo shows is the machinery
(real ``anthropic`` SDK over HTTP, rate limiter, breaker, Decimal cost ledger, request counts per
strategy, judge parsing, SQLite baseline cache, bootstrap intervals), not that coordination helps a
real model. Point :class:`~cert.coordination.client.AnthropicClientWithResilience` at the real API
(``ANTHROPIC_API_KEY``, no ``base_url``) for real numbers.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cert.coordination.baseline import BaselineMeasurer
from cert.coordination.client import AnthropicClientWithResilience
from cert.coordination.evaluator import QualityEvaluator
from cert.coordination.metrics import CoordinationMetrics
from cert.coordination.orchestrator import CoordinationOrchestrator, Strategy
from cert.coordination.testing import FakeAnthropicServer, FakeReply, text_reply

DEMO_TASK = "Explain how a circuit breaker protects a service that calls a flaky remote API."
TRUE_STATEMENTS = (
    "The breaker counts consecutive failures of calls to the remote API.",
    "After a failure threshold it opens and rejects calls immediately.",
    "Failing fast frees threads and connections that would wait on timeouts.",
    "After a recovery timeout it half-opens and lets one probe call through.",
    "A successful probe closes the breaker and normal traffic resumes.",
    "A failed probe opens the breaker again for another timeout.",
    "Client errors such as bad requests should not count as failures.",
    "Rejected calls can fall back to a cached or degraded answer.",
)
FALSE_STATEMENTS = (
    "The breaker retries every failed call until it succeeds.",
    "An open breaker queues calls and replays them later automatically.",
    "Breakers make the remote API itself more reliable.",
)
_STRATEGIES: tuple[Strategy, ...] = ("sequential", "parallel", "debate")
_SENTENCE = re.compile(r"[^.]+\.")


def _statements(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.findall(text)]


class ScriptedDemoResponder:
    """Deterministic (seeded) stand-in for agents and judge; see the module docstring."""

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def _draw(self, k: int, wrong_p: float) -> list[str]:
        picked = self._rng.sample(TRUE_STATEMENTS, k)
        if self._rng.random() < wrong_p:
            picked.append(self._rng.choice(FALSE_STATEMENTS))
        return picked

    def _agent(self, prompt: str) -> str:
        quoted = [s for s in _statements(prompt) if s in TRUE_STATEMENTS or s in FALSE_STATEMENTS]
        if "Several agents answered independently" in prompt:
            # Aggregator: keep every true statement seen, false ones only if repeated.
            keep = [s for s in dict.fromkeys(quoted) if s in TRUE_STATEMENTS or quoted.count(s) > 1]
            return " ".join(keep)
        if "A previous agent answered" in prompt or "Debate round" in prompt:
            kept = [
                s for s in dict.fromkeys(quoted) if s in TRUE_STATEMENTS or self._rng.random() < 0.5
            ]
            extra = [s for s in self._draw(2, 0.1) if s not in kept]
            return " ".join(kept + extra)
        return " ".join(self._draw(self._rng.randint(2, 4), 0.35))

    @staticmethod
    def _judge(prompt: str) -> dict[str, float]:
        answer = prompt.split("<answer>")[-1].split("</answer>")[0]
        said = set(_statements(answer))
        right = len(said & set(TRUE_STATEMENTS))
        wrong = len(said & set(FALSE_STATEMENTS))
        return {
            "correctness": round(1.0 - wrong / max(1, right + wrong), 4),
            "completeness": round(right / len(TRUE_STATEMENTS), 4),
            "clarity": round(1.0 if len(said) <= 6 else 6 / len(said), 4),
        }

    def __call__(self, body: Mapping[str, Any]) -> FakeReply:
        prompt = str(body.get("messages", [{}])[-1].get("content", ""))
        model = str(body.get("model", "unknown"))
        input_tokens = max(1, len(prompt.split()))
        with self._lock:
            if "output_config" in body or "tools" in body:
                return text_reply(
                    json.dumps(self._judge(prompt)), input_tokens=input_tokens, model=model
                )
            return text_reply(self._agent(prompt), input_tokens=input_tokens, model=model)


async def _measure_all(
    url: str, cache: Path, repeats: int, num_agents: int
) -> tuple[list[CoordinationMetrics], CoordinationMetrics, dict[str, Any]]:
    async with AnthropicClientWithResilience(
        api_key="demo-key-not-a-secret",
        base_url=url,
        requests_per_minute=10_000,
        max_cost_per_hour=1.0,
        max_retries=2,
    ) as client:
        evaluator = QualityEvaluator(client)
        measurer = BaselineMeasurer(client, evaluator, cache_path=cache)
        orchestrator = CoordinationOrchestrator(
            client=client, baseline_measurer=measurer, evaluator=evaluator
        )
        results = [
            await orchestrator.measure_coordination(
                DEMO_TASK, num_agents=num_agents, strategy=strategy, repeats=repeats
            )
            for strategy in _STRATEGIES
        ]
        again = await orchestrator.measure_coordination(
            DEMO_TASK, num_agents=num_agents, strategy="parallel", repeats=repeats
        )
        summary = {
            "cost": client.cost_summary().to_dict(),
            "http_attempts": client.stats.http_attempts,
            "judge_parse_failures": evaluator.parse_failures,
            "cache": vars(measurer.stats) | {"saved_fraction": measurer.stats.saved_fraction},
        }
        return results, again, summary


def _plot(results: list[CoordinationMetrics], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(5, 3.2))
    names = [m.strategy for m in results]
    gammas = [m.gamma for m in results]
    lows = [m.gamma - (m.gamma_ci.low if m.gamma_ci else m.gamma) for m in results]
    highs = [(m.gamma_ci.high if m.gamma_ci else m.gamma) - m.gamma for m in results]
    ax.bar(names, gammas, yerr=[lows, highs], capsize=6, color="#4a7ab5", label="γ, 95% CI")
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1, label="γ = 1: no effect")
    ax.set_xlabel("coordination strategy")
    ax.set_ylabel("γ = coordinated / lone score (ratio)")
    ax.set_title("Scripted demo backend: coordination effect by strategy", fontsize=9)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return True


def showcase(out_dir: Path, *, repeats: int = 8, num_agents: int = 3) -> str:
    """Run the offline measurement, write ``coordination.json`` (+ PNG) and return a summary."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    # A private, empty cache: the demo must start cold, and must never delete a file it did not
    # create (``out_dir`` may be a real cache directory holding a baselines.sqlite3).
    with tempfile.TemporaryDirectory(prefix="cert-coordination-demo-") as scratch:
        cache = Path(scratch) / "baselines.sqlite3"
        with FakeAnthropicServer(responder=ScriptedDemoResponder(seed=7)) as server:
            results, again, summary = asyncio.run(
                _measure_all(server.url, cache, repeats, num_agents)
            )
            http_requests = len(server.requests)
    took = time.perf_counter() - started
    payload = {
        "backend": "FakeAnthropicServer + ScriptedDemoResponder (scripted, not a model)",
        "task": DEMO_TASK,
        "measurements": [m.to_dict() for m in results],
        "repeat_parallel_with_cached_baseline": again.to_dict(),
        "client": summary,
        "http_requests_seen_by_fake_server": http_requests,
        "seconds": round(took, 2),
    }
    (out_dir / "coordination.json").write_text(json.dumps(payload, indent=2, default=str))
    plotted = _plot(results, out_dir / "coordination_gamma.png")
    lines = [
        "cert-coordination: coordination measurement, offline",
        "  backend: the real anthropic SDK against FakeAnthropicServer on 127.0.0.1 with a",
        "  SCRIPTED responder (no language model): agents draw true/false statements, the judge",
        "  scores coverage. Coordination helps here by construction; the numbers exercise the",
        "  machinery (requests, cost, cache, bootstrap), they say nothing about real models.",
        f"  task: {DEMO_TASK}",
        f"  {num_agents} agents, {repeats} repeats per strategy:",
    ]
    for m in results:
        ci = f"[{m.gamma_ci.low:.2f}, {m.gamma_ci.high:.2f}]" if m.gamma_ci else "n/a"
        lines.append(
            f"    {m.strategy:<10} γ={m.gamma:.2f} 95% CI {ci}  Ω={m.omega:+.2f}  "
            f"consensus={m.consensus_rate:.2f}  effective={m.is_coordination_effective()}  "
            f"calls={m.api_calls}  cost=${m.cost_usd}"
        )
    lines += [
        f"  baseline cache: repeated parallel run made {again.api_calls} calls "
        f"(baseline cached={again.baseline_cached}); calls saved overall: "
        f"{summary['cache']['saved_fraction']:.0%}",
        f"  HTTP requests seen by the fake server: {http_requests}; judge parse failures: "
        f"{summary['judge_parse_failures']}; total cost (list prices): ${summary['cost']['total']}",
        "  (no coordination_gamma.png: matplotlib is not installed)" if not plotted else "",
        "verdicts:",
    ]
    for m in results:
        effective = m.is_coordination_effective()
        lines.append(
            f"  {m.strategy}: coordination {'effective' if effective else 'NOT effective'} "
            f"(γ's 95% lower bound {'above' if effective else 'not above'} 1), "
            + (
                "expected: the scripted aggregator keeps every true statement it sees"
                if effective
                else "UNEXPECTED: the scripted responder makes coordination help by construction"
            )
        )
    lines.append(
        f"  cache: repeated run made {again.api_calls} calls, "
        + (
            "expected: its baseline came from the SQLite cache"
            if again.baseline_cached
            else "UNEXPECTED: the baseline was measured again"
        )
    )
    return "\n".join(line for line in lines if line)
