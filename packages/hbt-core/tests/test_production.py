"""The seed API on ProductionHBT works end to end on real fixtures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hbt_core import ProductionHBT, UpdateStrategy, VerificationStrategy
from hbt_core.auditlog import AuditLog
from hbt_core.edge import load_edge
from hbt_core.errors import InvalidInputError, KeyConfigurationError
from hbt_core.models import load_fixture


def test_seed_api_end_to_end(models: dict, tmp_path: Path, signing_key: Ed25519PrivateKey) -> None:
    log = AuditLog(tmp_path / "audit.sqlite", signing_key)
    hbt = ProductionHBT({"n_probes": 12}, signing_key=signing_key, audit_log=log)
    ref = hbt.build_signature(models["base"])
    assert hbt.build_signature(models["base"]) is ref  # cached
    renamed = load_fixture("seed1")
    renamed.name = "base"  # same name, different weights: must not hit the cache
    assert hbt.build_signature(renamed).root != ref.root
    cal = hbt.calibrate(models["base"], ref, runs=2)
    assert hbt.verify_model(ref, models["base"], cal).same_model
    assert not hbt.verify_model(ref, models["arch"], cal).same_model
    assert log.size == 2
    log.verify(signing_key.public_key())
    log.close()

    responses = hbt.encode_responses(models["base"], hbt.probes[:4], run_seed=3)
    before_counts, before = ref.counts.copy(), responses.copy()
    for strategy in UpdateStrategy:
        upd = hbt.incremental_signature_update(
            existing_hbt=ref, new_responses=responses, update_strategy=strategy
        )
        assert upd.n_responses == 4
        assert upd.bundled.shape == ref.bundled().shape
        again = hbt.incremental_signature_update(upd, responses, strategy)
        assert again is not upd
    assert np.array_equal(ref.counts, before_counts)
    assert np.array_equal(responses, before)
    assert VerificationStrategy.MAP_REDUCE.value == "map_reduce"

    package = hbt.export_for_edge_deployment(ref, optimization_level="balanced")
    assert len(package) <= 10 * 1024
    assert load_edge(package, signing_key.public_key()).root == ref.root


def test_bad_configuration(models: dict) -> None:
    with pytest.raises(InvalidInputError):
        ProductionHBT({"nonsense": 1})
    with pytest.raises(InvalidInputError):
        ProductionHBT({"dim": 100})
    hbt = ProductionHBT({"n_probes": 4})
    ref = hbt.build_signature(models["base"])
    with pytest.raises(KeyConfigurationError):
        hbt.export_for_edge_deployment(ref)
    with pytest.raises(InvalidInputError):
        hbt.incremental_signature_update(ref, np.zeros((1, 256), np.uint64), "decay")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        hbt.incremental_signature_update("sig", np.zeros((1, 256), np.uint64))  # type: ignore[arg-type]
