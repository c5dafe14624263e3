"""Distributed fingerprinting and verification on any ``concurrent.futures``-style executor.

Strategies:

- map-reduce: shards of the challenge set are encoded by workers, counters are summed;
- hierarchical: the same map, then a pairwise tree reduction executed on the workers;
- federated: each party encodes its own probes with its own model and shares its bundle
  counters and the Merkle root of its leaves instead of its responses and leaves. This is data
  minimisation, not privacy: the counters are the sum of the party's probe-bound leaves and
  the probe vectors are public, so a party with one probe reveals its leaf exactly and a party
  with few probes reveals most of its bits. Add noise or secure aggregation where that matters;
- gossip: a simulation of push-sum averaging, run inside one coordinator process. The parties'
  encodings run on the executor; the coordinator then runs seeded push-sum rounds over their
  counters in memory (there is no peer-to-peer network) until all estimates agree within half
  a count, and rounding recovers the exact integer sum. It shows the round count push-sum
  needs: relative error eps in O(log n + log 1/eps) rounds w.h.p. (Kempe, Dobra, Gehrke 2003).

Integer counters make every strategy equal to the single-process signature bit for bit.
Executors: ``ThreadPoolExecutor``/``ProcessPoolExecutor``, a Dask ``Client.get_executor()``,
or :class:`RayExecutor` (``ray`` extra).
"""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from hbt_core import merkle
from hbt_core.challenges import Probe
from hbt_core.errors import InvalidInputError, check_int
from hbt_core.hdc import Accumulator, Packed
from hbt_core.models import LogitModel, TextModel
from hbt_core.signature import (
    EncoderConfig,
    ShardResult,
    Signature,
    encode_shard,
    reduce_shards,
)

Model = LogitModel | TextModel


class VerificationStrategy(enum.Enum):
    MAP_REDUCE = "map_reduce"
    HIERARCHICAL = "hierarchical"
    FEDERATED = "federated"
    GOSSIP = "gossip"


def split(probes: Sequence[Probe], n_shards: int) -> list[list[Probe]]:
    """Contiguous, order-preserving shards of nearly equal size (none empty)."""
    check_int("n_shards", n_shards, low=1, high=max(1, len(probes)))
    bounds = np.linspace(0, len(probes), n_shards + 1).astype(int)
    return [list(probes[a:b]) for a, b in itertools.pairwise(bounds)]


def merge_pair(a: ShardResult, b: ShardResult) -> ShardResult:
    """Reduce two shard results (leaves concatenated in order, counters summed)."""
    return ShardResult(
        a.probe_ids + b.probe_ids,
        np.concatenate([a.leaves, b.leaves]),
        np.concatenate([a.variances, b.variances]),
        a.counts + b.counts,
        a.total + b.total,
    )


def _map(
    executor: Executor,
    models: Sequence[Model],
    shards: list[list[Probe]],
    config: EncoderConfig,
    run_seed: int,
) -> list[Future[ShardResult]]:
    return [
        executor.submit(encode_shard, models[i % len(models)], shard, config, run_seed)
        for i, shard in enumerate(shards)
    ]


def map_reduce(
    executor: Executor,
    models: Sequence[Model],
    probes: Sequence[Probe],
    config: EncoderConfig,
    run_seed: int = 0,
    n_shards: int | None = None,
) -> Signature:
    """Shard ``i`` is answered by ``models[i % len(models)]`` (replicas of one deployment)."""
    shards = split(probes, n_shards or len(models))
    results = [f.result() for f in _map(executor, models, shards, config, run_seed)]
    return reduce_shards(results, config, getattr(models[0], "name", ""), run_seed)


def hierarchical(
    executor: Executor,
    models: Sequence[Model],
    probes: Sequence[Probe],
    config: EncoderConfig,
    run_seed: int = 0,
    n_shards: int | None = None,
) -> Signature:
    level: list[Any] = _map(
        executor, models, split(probes, n_shards or len(models)), config, run_seed
    )
    level = [f.result() for f in level]
    while len(level) > 1:
        nxt = [
            executor.submit(merge_pair, level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)
        ]
        tail = [level[-1]] if len(level) % 2 else []
        level = [f.result() for f in nxt] + tail
    root: ShardResult = level[0]
    return reduce_shards([root], config, getattr(models[0], "name", ""), run_seed)


@dataclass(frozen=True)
class PartyUpdate:
    """What a federated party shares: bundle counters and a commitment to its leaves.

    The counters are not private: they determine the party's leaves when it has one probe and
    most of their bits when it has few (see the module docstring).
    """

    party: int
    probe_ids: tuple[str, ...]
    counts: npt.NDArray[np.int64]
    total: int
    leaves_root: bytes


def federated_party(
    party: int, model: Model, probes: Sequence[Probe], config: EncoderConfig, run_seed: int
) -> PartyUpdate:
    """Runs at the party: encode locally, share counters + Merkle root (not the raw leaves)."""
    shard = encode_shard(model, probes, config, run_seed)
    committed = [
        pid.encode() + b"\x00" + leaf.astype("<u8").tobytes()
        for pid, leaf in zip(shard.probe_ids, shard.leaves, strict=True)
    ]
    return PartyUpdate(
        party, tuple(shard.probe_ids), shard.counts, shard.total, merkle.root_of(committed)
    )


@dataclass(frozen=True)
class FederatedResult:
    counts: npt.NDArray[np.int64]
    total: int
    party_roots: tuple[bytes, ...]
    probe_ids: tuple[str, ...]

    def bundled(self) -> Packed:
        return Accumulator.from_counts(self.counts, self.total).threshold()


def federated(
    executor: Executor,
    models: Sequence[Model],
    probes: Sequence[Probe],
    config: EncoderConfig,
    run_seed: int = 0,
) -> FederatedResult:
    shards = split(probes, len(models))
    futures = [
        executor.submit(federated_party, i, m, s, config, run_seed)
        for i, (m, s) in enumerate(zip(models, shards, strict=True))
    ]
    updates = [f.result() for f in futures]
    acc = Accumulator(config.dim)
    for u in updates:
        acc.merge(Accumulator.from_counts(u.counts, u.total))
    return FederatedResult(
        acc.counts,
        int(acc.total),
        tuple(u.leaves_root for u in updates),
        tuple(pid for u in updates for pid in u.probe_ids),
    )


@dataclass(frozen=True)
class GossipResult:
    counts: npt.NDArray[np.int64]
    total: int
    rounds: int
    round_bound: int


def push_sum(
    values: Sequence[npt.NDArray[np.float64]], seed: int = 0, max_rounds: int | None = None
) -> tuple[npt.NDArray[np.float64], int, int]:
    """Push-sum gossip for the sum of integer vectors; returns (exact sum, rounds, bound).

    Each round every node keeps half of its (sum, weight) mass and pushes half to a random peer.
    Stops when every node's estimate ``n * s_i / w_i`` is within 0.25 of every other's, so
    rounding gives the exact integer sum.
    """
    n = len(values)
    if n == 0:
        raise InvalidInputError("push_sum needs at least one node")
    s = np.stack([np.asarray(v, dtype=np.float64) for v in values])
    w = np.ones(n)
    scale = max(1.0, float(np.abs(s).sum(axis=0).max()))
    bound = math.ceil(4 * (math.log2(max(n, 2)) + math.log2(8 * n * scale))) + 10
    limit = max_rounds or bound * 4
    rng = np.random.default_rng(seed)
    for rounds in range(limit + 1):
        est = n * s / w[:, None]
        if float(np.max(est.max(axis=0) - est.min(axis=0))) < 0.25:
            return np.rint(est[0]), rounds, bound
        targets = rng.integers(0, n, size=n)
        s_half, w_half = s / 2, w / 2
        s, w = s_half.copy(), w_half.copy()
        np.add.at(s, targets, s_half)
        np.add.at(w, targets, w_half)
    raise InvalidInputError(f"push-sum did not converge in {limit} rounds")


def gossip(
    executor: Executor,
    models: Sequence[Model],
    probes: Sequence[Probe],
    config: EncoderConfig,
    run_seed: int = 0,
    seed: int = 0,
) -> GossipResult:
    """Encode each party's shard on ``executor``, then simulate push-sum in this process."""
    fed = [
        f.result()
        for f in [
            executor.submit(federated_party, i, m, s, config, run_seed)
            for i, (m, s) in enumerate(zip(models, split(probes, len(models)), strict=True))
        ]
    ]
    vectors = [np.append(u.counts, u.total).astype(np.float64) for u in fed]
    total, rounds, bound = push_sum(vectors, seed)
    return GossipResult(total[:-1].astype(np.int64), int(total[-1]), rounds, bound)


class RayExecutor(Executor):
    """A ``concurrent.futures`` facade over Ray tasks (``ray`` extra, imported lazily)."""

    def __init__(self) -> None:
        import ray  # lazy: ray extra

        if not ray.is_initialized():
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        self._ray = ray

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        remote = self._ray.remote(fn)
        return remote.remote(*args, **kwargs).future()
