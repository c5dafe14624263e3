"""Adaptive challenge selection: which probes to ask next.

Per-probe statistics come from calibration runs: ``p0[i]`` = P(probe i agrees | same model)
from the same-model null and ``p1[i]`` = P(agrees | different model) from calibration runs of a
known-different model (Laplace-smoothed). Strategies:

- information gain: the expected log-likelihood-ratio drift per query of the SPRT,
  ``KL(Bern(p1) || Bern(p0))`` -- the probes that end the test soonest when models differ;
- uncertainty: probes whose null similarity is closest to the threshold (most informative when
  the candidate is borderline);
- diversity: greedy farthest-point selection on the reference leaves (Hamming distance);
- adversarial: fresh perturbation variants of the most informative probes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hbt_core.challenges import PERTURBATIONS, Probe
from hbt_core.errors import InvalidInputError, check_int
from hbt_core.hdc import hamming_many
from hbt_core.signature import Signature
from hbt_core.verification import SequentialResult, per_probe_similarity

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ProbeStats:
    p0: FloatArray
    p1: FloatArray
    null_mean: FloatArray
    threshold: float

    @classmethod
    def from_runs(
        cls,
        reference: Signature,
        null_runs: Sequence[Signature],
        alt_runs: Sequence[Signature],
        threshold: float,
    ) -> ProbeStats:
        if not null_runs or not alt_runs:
            raise InvalidInputError("need at least one null run and one alternative run")
        null = np.stack([per_probe_similarity(reference, s) for s in null_runs])
        alt = np.stack([per_probe_similarity(reference, s) for s in alt_runs])
        p0 = ((null >= threshold).sum(axis=0) + 1) / (len(null_runs) + 2)
        p1 = ((alt >= threshold).sum(axis=0) + 1) / (len(alt_runs) + 2)
        return cls(p0, np.minimum(p1, p0 - 1e-3), null.mean(axis=0), threshold)

    def information_gain(self) -> FloatArray:
        p0, p1 = self.p0, self.p1
        return p1 * np.log(p1 / p0) + (1 - p1) * np.log((1 - p1) / (1 - p0))


def order_by_information(stats: ProbeStats) -> list[int]:
    return [int(i) for i in np.argsort(-stats.information_gain(), kind="stable")]


def order_by_uncertainty(stats: ProbeStats) -> list[int]:
    return [int(i) for i in np.argsort(np.abs(stats.null_mean - stats.threshold), kind="stable")]


def order_by_diversity(reference: Signature, start: int = 0) -> list[int]:
    """Greedy farthest-point ordering of probes by their reference leaves."""
    n = len(reference.probe_ids)
    check_int("start", start, low=0, high=n - 1)
    order = [start]
    dist = hamming_many(reference.leaves[start], reference.leaves).astype(float)
    dist[start] = -1
    while len(order) < n:
        nxt = int(np.argmax(dist))
        order.append(nxt)
        dist = np.minimum(dist, hamming_many(reference.leaves[nxt], reference.leaves))
        dist[order] = -1
    return order


def adversarial_variants(
    probes: Sequence[Probe], stats: ProbeStats, k: int = 4, per_probe: int = 2, seed: int = 0
) -> list[Probe]:
    """New probes: perturbed copies of the ``k`` most informative probes."""
    rng = np.random.default_rng(seed)
    names = sorted(PERTURBATIONS)
    out = []
    for i in order_by_information(stats)[:k]:
        for j in range(per_probe):
            op = PERTURBATIONS[names[int(rng.integers(0, len(names)))]]
            prompt = op(probes[i].prompt, rng)
            out.append(Probe(f"{probes[i].probe_id}~adv{j}", probes[i].domain, prompt))
    return out


def ordered_sprt(
    similarities: FloatArray,
    order: Sequence[int],
    stats: ProbeStats,
    alpha: float = 0.01,
    beta: float = 0.01,
) -> SequentialResult:
    """SPRT with per-probe agreement probabilities, asking probes in ``order``."""
    upper, lower = math.log((1 - beta) / alpha), math.log(beta / (1 - alpha))
    llr, n = 0.0, 0
    for n, i in enumerate(order, start=1):
        agree = similarities[i] >= stats.threshold
        p0, p1 = stats.p0[i], stats.p1[i]
        llr += math.log(p1 / p0) if agree else math.log((1 - p1) / (1 - p0))
        if llr >= upper:
            return SequentialResult("different", n, llr, alpha, beta)
        if llr <= lower:
            return SequentialResult("same", n, llr, alpha, beta)
    return SequentialResult("undecided", n, llr, alpha, beta)
