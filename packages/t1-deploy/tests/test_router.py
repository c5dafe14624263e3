"""Monotone additive teacher → 16-segment INT8 tables: fidelity, monotonicity, quantisation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from t1_deploy.errors import ArtifactError, ConfigError, InvalidInputError, NotFittedError
from t1_deploy.package import DeploymentLogs
from t1_deploy.router import (
    MONOTONE,
    Int8RouterPolicy,
    MonotoneRouterDistiller,
    RouterDistillationConfig,
    fit_monotone_table,
    quantize_int8,
    table_knots,
)


def test_distilled_router_is_faithful_and_monotone(
    distiller: MonotoneRouterDistiller, logs: DeploymentLogs
) -> None:
    report = distiller.report
    assert report is not None
    assert all(r2 >= 0.99 for r2 in report.r2_holdout.values()), report.r2_holdout
    assert report.monotonicity_violations == {"tau": 0, "spend": 0, "gain": 0}
    assert report.quantization_within_half_step
    for head in ("tau", "spend", "gain"):
        teacher = distiller.teacher_predict(logs.test.features, head)
        ours = distiller.predict(logs.test.features, head)
        ss_res = np.sum((teacher - ours) ** 2)
        ss_tot = np.sum((teacher - teacher.mean()) ** 2)
        assert ss_tot == 0 or 1 - ss_res / ss_tot >= 0.99
        for table in distiller.heads[head].tables:
            assert len(table.knots) == 17
            assert len(table.q) == 17
            assert all(-128 <= q <= 127 for q in table.q)


def test_teacher_is_additive(distiller: MonotoneRouterDistiller, logs: DeploymentLogs) -> None:
    """Changing feature j moves the prediction by the same amount whatever the others are."""
    X = logs.test.features[:50].copy()
    for j in range(X.shape[1]):
        moved = X.copy()
        moved[:, j] = X[0, j]
        delta = distiller.teacher_predict(moved) - distiller.teacher_predict(X)
        base = X.copy()
        base[:, [k for k in range(X.shape[1]) if k != j]] = X[
            1, [k for k in range(X.shape[1]) if k != j]
        ]
        moved_base = base.copy()
        moved_base[:, j] = X[0, j]
        delta_base = distiller.teacher_predict(moved_base) - distiller.teacher_predict(base)
        np.testing.assert_allclose(delta, delta_base, atol=1e-9)


def test_int8_policy_matches_numpy_and_survives_export(
    distiller: MonotoneRouterDistiller, logs: DeploymentLogs, tmp_path: Path
) -> None:
    distiller.routing_threshold = 0.2
    path = distiller.export_production_config(tmp_path / "router_distilled_int8.json")
    payload = json.loads(path.read_text())
    assert isinstance(payload["heads"]["tau"]["tables"][0]["q"][0], int)  # numbers as numbers
    policy = Int8RouterPolicy.load(path)
    batch = policy.score_batch(logs.test.features)
    np.testing.assert_allclose(batch, distiller.predict(logs.test.features), atol=1e-12)
    for row in logs.test.features[:50]:
        assert policy.score(row.tolist()) == pytest.approx(
            distiller.predict(row[None, :])[0], abs=1e-12
        )
        assert policy.upshift(row.tolist()) == (policy.score(row.tolist()) >= 0.2)


def test_tampered_or_truncated_export_is_rejected(
    distiller: MonotoneRouterDistiller, tmp_path: Path
) -> None:
    path = distiller.export_production_config(tmp_path / "r.json")
    payload = json.loads(path.read_text())
    payload["heads"]["tau"]["intercept"] += 1.0
    path.write_text(json.dumps(payload))
    with pytest.raises(ArtifactError, match="checksum"):
        Int8RouterPolicy.load(path)
    path.write_text(path.read_text()[:100])
    with pytest.raises(ArtifactError):
        Int8RouterPolicy.load(path)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=2, max_size=40),
)
def test_int8_quantisation_error_within_half_step_and_order_preserving(values: list[float]) -> None:
    arr = np.sort(np.asarray(values))
    q, scale, offset = quantize_int8(arr)
    decoded = offset + scale * (np.asarray(q) + 128.0)
    assert np.all(np.abs(decoded - arr) <= scale / 2 + 1e-9 * max(1.0, np.abs(arr).max()))
    assert np.all(np.diff(q) >= 0)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([1, -1]))
def test_monotone_table_fit_is_monotone(seed: int, direction: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.random(300)
    y = direction * np.sin(3 * x) + rng.normal(0, 0.5, 300)  # non-monotone truth, noisy
    knots = table_knots(x, [], 16)
    values = fit_monotone_table(x, y, knots, direction)
    assert len(knots) == 17
    assert np.all(np.diff(values) * direction >= -1e-9)


def test_fit_rejects_bad_inputs() -> None:
    d = MonotoneRouterDistiller()
    X = np.random.default_rng(0).random((100, 4))
    y = np.zeros(100)
    with pytest.raises(InvalidInputError):
        d.fit(X[:, :3], y, y, y)
    with pytest.raises(InvalidInputError):
        d.fit(X, y[:50], y, y)
    bad = X.copy()
    bad[3, 1] = np.inf
    with pytest.raises(InvalidInputError, match="X_context"):
        d.fit(bad, y, y, y)
    with pytest.raises(NotFittedError):
        d.predict(X)
    with pytest.raises(ConfigError):
        RouterDistillationConfig(quantization_bits=4)
    with pytest.raises(ConfigError):
        RouterDistillationConfig(n_segments=True)


def test_monotone_directions_are_the_specified_ones() -> None:
    assert MONOTONE["tau"][:2] == (1, 1)
    assert MONOTONE["spend"][:2] == (1, 1)
    assert MONOTONE["gain"][2] == -1
