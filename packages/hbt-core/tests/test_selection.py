"""Adaptive challenge selection decides in fewer queries than random order on the fixtures."""

from __future__ import annotations

import numpy as np
import pytest

from hbt_core.challenges import generate_probes
from hbt_core.selection import (
    ProbeStats,
    adversarial_variants,
    order_by_diversity,
    order_by_information,
    order_by_uncertainty,
    ordered_sprt,
)
from hbt_core.signature import EncoderConfig, build_signature
from hbt_core.verification import Calibration, per_probe_similarity


@pytest.mark.slow
def test_information_order_beats_random(models: dict, config: EncoderConfig) -> None:
    probes = generate_probes(32, seed=5)
    ref = build_signature(models["base"], probes, config, 0)
    nulls = [build_signature(models["base"], probes, config, s) for s in (1, 2, 3, 4)]
    cal = Calibration.from_null(ref, nulls)
    # statistics learned against one known-different model (seed1) ...
    alts = [build_signature(models["seed1"], probes, config, s) for s in (1, 2)]
    stats = ProbeStats.from_runs(ref, nulls, alts, cal.probe_threshold)
    adaptive_order = order_by_information(stats)
    # ... evaluated on held-out models and fresh runs
    rng = np.random.default_rng(0)
    adaptive, random = [], []
    for name in ("arch", "int4", "finetuned"):
        sims = per_probe_similarity(ref, build_signature(models[name], probes, config, 9))
        a = ordered_sprt(sims, adaptive_order, stats)
        adaptive.append(a.queries if a.decision == "different" else len(probes) + 1)
        for _ in range(20):
            r = ordered_sprt(sims, rng.permutation(len(probes)).tolist(), stats)
            random.append(r.queries if r.decision == "different" else len(probes) + 1)
    assert np.mean(adaptive) < np.mean(random)


def test_other_orders_are_permutations(
    models: dict, reference: object, null_runs: list, calibration: Calibration, probes: list
) -> None:
    stats = ProbeStats.from_runs(
        reference,
        null_runs,
        null_runs[:1],  # type: ignore[arg-type]
        calibration.probe_threshold,
    )
    n = len(probes)
    assert sorted(order_by_uncertainty(stats)) == list(range(n))
    assert sorted(order_by_diversity(reference)) == list(range(n))  # type: ignore[arg-type]
    adv = adversarial_variants(probes, stats, k=3, per_probe=2)
    assert len(adv) == 6
    assert all("~adv" in p.probe_id for p in adv)
    assert all(np.isfinite(stats.information_gain()))


def test_bad_inputs(reference: object, null_runs: list) -> None:
    import pytest

    from hbt_core.errors import InvalidInputError

    with pytest.raises(InvalidInputError):
        ProbeStats.from_runs(reference, [], null_runs, 0.9)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        order_by_diversity(reference, start=99)  # type: ignore[arg-type]
