"""Coordination metrics: γ, Ω, consensus rate and their bootstrap uncertainty.

Definitions (scores are judge scores in [0, 1]):

* **γ (gamma)** = mean coordinated score / mean baseline score (>1: the team beats a lone agent
  on average);
* **Ω (omega)** = mean coordinated score − best baseline score (>0: the team beats the best lone
  agent);
* **consensus rate** = mean pairwise cosine similarity of the agents' answers as bag-of-words
  term-frequency vectors (lower-cased ``\\w+`` tokens); identical texts give 1.0, texts without a
  shared word 0.0.

With several coordinated runs (``repeats > 1``) a percentile bootstrap (coordinated and baseline
scores resampled independently) gives 95% intervals for γ and Ω, and
:meth:`CoordinationMetrics.is_coordination_effective` is true only when γ's lower bound is above 1.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from itertools import combinations
from typing import Any

import numpy as np

from cert.coordination._validate import check_float, check_int
from cert.coordination.errors import CoordinationInputError, MetricsUndefinedError

_WORD = re.compile(r"\w+", re.UNICODE)
MIN_BASELINE_MEAN = 1e-9
"""A baseline mean below this is treated as zero: γ is then undefined (not an overflow)."""


def bag_of_words(text: str) -> Counter[str]:
    return Counter(_WORD.findall(text.lower()))


def cosine_similarity(a: str, b: str) -> float:
    """Cosine similarity of two texts' term-frequency vectors (1.0 for two texts without words)."""
    va, vb = bag_of_words(a), bag_of_words(b)
    if not va and not vb:
        return 1.0
    if not va or not vb:
        return 0.0
    dot = sum(count * vb[word] for word, count in va.items())
    norm = math.sqrt(sum(c * c for c in va.values())) * math.sqrt(sum(c * c for c in vb.values()))
    return min(1.0, dot / norm)


def consensus_rate(answers: Sequence[str]) -> float:
    """Mean pairwise cosine similarity of the answers (needs at least two)."""
    if len(answers) < 2:
        raise CoordinationInputError(
            f"consensus needs at least 2 answers, got {len(answers)}", context={"field": "answers"}
        )
    pairs = [cosine_similarity(a, b) for a, b in combinations(answers, 2)]
    return float(sum(pairs) / len(pairs))


def _scores(name: str, values: Sequence[float]) -> np.ndarray:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise CoordinationInputError(f"{name} must be a non-empty sequence of scores")
    checked = [
        check_float(f"{name}[{i}]", v, minimum=0.0, maximum=1.0) for i, v in enumerate(values)
    ]
    return np.asarray(checked, dtype=float)


def gamma_omega(coordinated: Sequence[float], baseline: Sequence[float]) -> tuple[float, float]:
    """Point estimates of γ and Ω (raises MetricsUndefinedError when the baseline mean is 0)."""
    coord, base = _scores("coordinated", coordinated), _scores("baseline", baseline)
    if base.mean() < MIN_BASELINE_MEAN:
        raise MetricsUndefinedError("γ is undefined: every baseline score is 0")
    return float(coord.mean() / base.mean()), float(coord.mean() - base.max())


@dataclass(frozen=True)
class Interval:
    """A two-sided confidence interval."""

    low: float
    high: float
    level: float = 0.95


def bootstrap_intervals(
    coordinated: Sequence[float],
    baseline: Sequence[float],
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[Interval, Interval, int]:
    """Percentile bootstrap intervals for γ and Ω; also returns the resamples dropped (γ undefined).

    Coordinated and baseline scores are resampled independently (they are independent runs).
    """
    coord, base = _scores("coordinated", coordinated), _scores("baseline", baseline)
    check_int("n_boot", n_boot, minimum=100, maximum=1_000_000)
    check_float("level", level, minimum=0.5, maximum=0.999)
    rng = np.random.default_rng(seed)
    coord_samples = coord[rng.integers(0, coord.size, size=(n_boot, coord.size))]
    base_samples = base[rng.integers(0, base.size, size=(n_boot, base.size))]
    coord_means = coord_samples.mean(axis=1)
    base_means = base_samples.mean(axis=1)
    defined = base_means >= MIN_BASELINE_MEAN
    if not defined.any():
        raise MetricsUndefinedError("γ is undefined: every baseline score is 0")
    gammas = coord_means[defined] / base_means[defined]
    omegas = coord_means - base_samples.max(axis=1)
    tail = (1.0 - level) / 2 * 100
    g_low, g_high = np.percentile(gammas, [tail, 100 - tail])
    o_low, o_high = np.percentile(omegas, [tail, 100 - tail])
    return (
        Interval(float(g_low), float(g_high), level),
        Interval(float(o_low), float(o_high), level),
        int((~defined).sum()),
    )


@dataclass
class CoordinationMetrics:
    """Result of one coordination measurement (see module docstring for the definitions)."""

    task: str
    strategy: str
    num_agents: int
    gamma: float
    omega: float
    consensus_rate: float
    coordinated_scores: list[float]
    baseline_scores: list[float]
    gamma_ci: Interval | None = None
    omega_ci: Interval | None = None
    repeats: int = 1
    api_calls: int = 0
    baseline_cached: bool = False
    judge_parse_failures: int = 0
    cost_usd: Decimal | None = None
    latency_s: float = 0.0
    final_answer: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def is_coordination_effective(self) -> bool:
        """True only when the bootstrap lower bound of γ is above 1 (needs ``repeats > 1``)."""
        return self.gamma_ci is not None and self.gamma_ci.low > 1.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cost_usd"] = None if self.cost_usd is None else str(self.cost_usd)
        data["coordination_effective"] = self.is_coordination_effective()
        return data


def compute_metrics(
    *,
    task: str,
    strategy: str,
    num_agents: int,
    coordinated_scores: Sequence[float],
    baseline_scores: Sequence[float],
    agent_answers_per_run: Sequence[Sequence[str]],
    n_boot: int = 2000,
    seed: int = 0,
) -> CoordinationMetrics:
    """Build :class:`CoordinationMetrics`, with bootstrap intervals when there are ≥2 runs.

    The consensus rate is averaged over the runs' answer sets.
    """
    if not agent_answers_per_run:
        raise CoordinationInputError("agent_answers_per_run must not be empty")
    consensus = sum(consensus_rate(run) for run in agent_answers_per_run) / len(
        agent_answers_per_run
    )
    gamma, omega = gamma_omega(coordinated_scores, baseline_scores)
    gamma_ci = omega_ci = None
    dropped = 0
    if len(coordinated_scores) > 1:
        gamma_ci, omega_ci, dropped = bootstrap_intervals(
            coordinated_scores, baseline_scores, n_boot=n_boot, seed=seed
        )
    return CoordinationMetrics(
        task=task,
        strategy=strategy,
        num_agents=num_agents,
        gamma=gamma,
        omega=omega,
        consensus_rate=float(consensus),
        coordinated_scores=[float(s) for s in coordinated_scores],
        baseline_scores=[float(s) for s in baseline_scores],
        gamma_ci=gamma_ci,
        omega_ci=omega_ci,
        repeats=len(coordinated_scores),
        details={"bootstrap_dropped": dropped} if dropped else {},
    )
