"""Sharded fingerprints equal the single-process one exactly, on threads, Dask and Ray."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from hbt_core import distributed
from hbt_core.distributed import VerificationStrategy
from hbt_core.errors import InvalidInputError
from hbt_core.production import ProductionHBT
from hbt_core.signature import EncoderConfig, Signature


def _assert_same(sig: Signature, reference: Signature) -> None:
    assert np.array_equal(sig.counts, reference.counts)
    assert np.array_equal(sig.leaves, reference.leaves)
    assert sig.root == reference.root


def test_every_strategy_equals_single_process(
    models: dict, probes: list, config: EncoderConfig, reference: Signature
) -> None:
    replicas = [models["base"]] * 3
    with ThreadPoolExecutor(max_workers=2) as pool:
        _assert_same(distributed.map_reduce(pool, replicas, probes, config, 0), reference)
        _assert_same(
            distributed.hierarchical(pool, replicas, probes, config, 0, n_shards=5), reference
        )
        fed = distributed.federated(pool, replicas, probes, config, 0)
        gos = distributed.gossip(pool, replicas, probes, config, 0, seed=3)
    assert np.array_equal(fed.counts, reference.counts)
    assert fed.total == reference.total
    assert len(fed.party_roots) == 3
    assert fed.probe_ids == reference.probe_ids
    assert np.array_equal(gos.counts, reference.counts)
    assert gos.total == reference.total
    assert gos.rounds <= gos.round_bound


def test_push_sum_is_exact_for_many_nodes() -> None:
    rng = np.random.default_rng(0)
    values = [rng.integers(0, 1000, size=50).astype(float) for _ in range(16)]
    total, rounds, bound = distributed.push_sum(values, seed=1)
    assert np.array_equal(total, np.sum(values, axis=0))
    assert rounds <= bound


def test_facade_distributed_verification(
    models: dict, reference: Signature, calibration: object
) -> None:
    hbt = ProductionHBT({"n_probes": 16})
    result = asyncio.run(
        hbt.distributed_verification(
            model_shards=[models["base"], models["base"]],
            verification_strategy=VerificationStrategy.MAP_REDUCE,
            reference=reference,
            calibration=calibration,
            run_seed=5,
        )
    )  # type: ignore[arg-type]
    assert result.verification is not None
    assert result.verification.same_model
    other = asyncio.run(
        hbt.distributed_verification(
            model_shards=[models["seed1"]],
            verification_strategy=VerificationStrategy.GOSSIP,
            reference=reference,
        )
    )
    assert other.bundle_similarity is not None
    assert result.bundle_similarity is not None
    assert other.bundle_similarity < result.bundle_similarity
    with pytest.raises(InvalidInputError):
        asyncio.run(hbt.distributed_verification(model_shards=[]))
    with pytest.raises(InvalidInputError):
        asyncio.run(
            hbt.distributed_verification(
                model_shards=[models["base"]], verification_strategy="map_reduce"
            )
        )  # type: ignore[arg-type]


@pytest.mark.slow
def test_dask_local_cluster_equals_single_process(
    models: dict, probes: list, config: EncoderConfig, reference: Signature
) -> None:
    distributed_mod = pytest.importorskip("distributed")
    with (
        distributed_mod.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed_mod.Client(cluster) as client,
    ):
        executor = client.get_executor()
        _assert_same(
            distributed.map_reduce(executor, [models["base"]] * 2, probes, config, 0), reference
        )
        _assert_same(
            distributed.hierarchical(executor, [models["base"]] * 2, probes, config, 0, n_shards=4),
            reference,
        )


@pytest.mark.slow
@pytest.mark.heavy
def test_ray_equals_single_process(
    models: dict, probes: list, config: EncoderConfig, reference: Signature
) -> None:
    ray = pytest.importorskip("ray")
    try:
        executor = distributed.RayExecutor()
        _assert_same(
            distributed.map_reduce(executor, [models["base"]] * 2, probes, config, 0), reference
        )
    finally:
        ray.shutdown()


def test_bad_inputs(probes: list) -> None:
    with pytest.raises(InvalidInputError):
        distributed.push_sum([])
    with pytest.raises(InvalidInputError):
        distributed.split(probes, 0)
    with pytest.raises(InvalidInputError):
        distributed.split(probes, len(probes) + 1)
    assert [len(s) for s in distributed.split(probes, 3)] == [5, 5, 6]


def test_federated_counters_are_not_private(
    models: dict, probes: list, config: EncoderConfig
) -> None:
    """What the docstring now says: a one-probe party's shared counters give its leaf back."""
    from hbt_core.distributed import federated_party
    from hbt_core.hdc import Accumulator
    from hbt_core.signature import encode_probe, probe_vector

    update = federated_party(0, models["base"], probes[:1], config, run_seed=0)
    leaf, _ = encode_probe(models["base"], probes[0], config, 0)
    bound = Accumulator.from_counts(update.counts, update.total).threshold()
    recovered = np.bitwise_xor(bound, probe_vector(probes[0].probe_id, config.dim))
    assert np.array_equal(recovered, leaf)
