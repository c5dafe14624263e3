"""Calibration: Platt and isotonic (PAV) meet the targets on held-out data; bad data is typed."""

from __future__ import annotations

import itertools
import json
import logging
import math
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resontinex.trust import (
    CalibrationAdapter,
    CalibrationError,
    CompositeTrustGate,
    InputVector,
    calibration_report,
)
from resontinex.trust.calibration import reliability_diagram
from resontinex.trust.calibration_metrics import expected_calibration_error, roc_auc
from resontinex.trust.synthetic import miscalibrated_scores


@pytest.fixture(scope="module")
def data() -> tuple[list[float], list[int], list[float], list[int]]:
    train_s, train_y = miscalibrated_scores(5000, seed=11)
    test_s, test_y = miscalibrated_scores(5000, seed=12)
    return train_s, train_y, test_s, test_y


@pytest.mark.parametrize("method", ["platt", "isotonic", "auto"])
def test_calibration_meets_targets_on_held_out_data(
    data: tuple[list[float], list[int], list[float], list[int]], method: str
) -> None:
    train_s, train_y, test_s, test_y = data
    adapter = CalibrationAdapter(method, backend="python")
    assert adapter.fit(train_s, train_y) is True
    report = adapter.report(test_s, test_y)
    before, after = report["before"], report["after"]
    assert before["ece"] > 0.05  # the source really is miscalibrated
    assert after["ece"] <= 0.5 * before["ece"]
    assert after["brier"] <= before["brier"]
    if adapter.fitted_method == "platt":  # strictly increasing map: the ranking is untouched
        assert after["auc"] == before["auc"]
    else:  # flat only outside the fitted range: a few ties at the extremes
        assert after["auc"] == pytest.approx(before["auc"], abs=0.005)


def test_auto_picks_by_held_out_log_loss(
    data: tuple[list[float], list[int], list[float], list[int]],
) -> None:
    train_s, train_y, _, _ = data
    adapter = CalibrationAdapter("auto")
    assert adapter.fit(train_s, train_y)
    losses = adapter.fit_report["heldout_log_loss"]
    assert set(losses) == {"platt", "isotonic"}
    assert adapter.fitted_method == min(losses, key=losses.__getitem__)
    small = CalibrationAdapter("auto")
    assert small.fit(train_s[:200], train_y[:200])
    assert small.fitted_method == "platt"  # below isotonic_min_samples


def test_platt_recovers_the_true_map() -> None:
    # scores = σ(2.5 z + 0.8) with P(y) = σ(z): the calibrated map is σ((f − 0.8) / 2.5)
    scores, labels = miscalibrated_scores(20000, seed=3)
    adapter = CalibrationAdapter("platt")
    assert adapter.fit(scores, labels)
    assert adapter.platt is not None
    a, b = adapter.platt
    assert a == pytest.approx(0.4, abs=0.03)
    assert b == pytest.approx(-0.32, abs=0.05)


def test_numpy_and_python_backends_agree(
    data: tuple[list[float], list[int], list[float], list[int]],
) -> None:
    pytest.importorskip("numpy")
    train_s, train_y, test_s, _ = data
    for method in ("platt", "isotonic"):
        py = CalibrationAdapter(method, backend="python")
        npy = CalibrationAdapter(method, backend="numpy")
        assert py.fit(train_s, train_y)
        assert npy.fit(train_s, train_y)
        for s in test_s[:500]:
            assert npy.predict(s) == pytest.approx(py.predict(s), abs=1e-9)


def test_predict_many_matches_predict(
    data: tuple[list[float], list[int], list[float], list[int]],
) -> None:
    np = pytest.importorskip("numpy")
    train_s, train_y, test_s, _ = data
    for method in ("platt", "isotonic"):
        adapter = CalibrationAdapter(method)
        assert adapter.fit(train_s, train_y)
        many = adapter.predict_many(np.asarray(test_s))
        assert many.tolist() == pytest.approx([adapter.predict(s) for s in test_s], abs=1e-12)
        assert adapter.predict_many(test_s[:10]) == [adapter.predict(s) for s in test_s[:10]]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0.0, 1.0), st.booleans()),
        min_size=2,
        max_size=200,
    )
)
def test_pav_is_monotone_and_matches_a_naive_reference(pairs: list[tuple[float, bool]]) -> None:
    scores = [s for s, _ in pairs]
    labels = [int(y) for _, y in pairs]
    if len(set(labels)) < 2:
        labels[0] = 1 - labels[0]
    adapter = CalibrationAdapter("isotonic", min_samples=2)
    assert adapter.fit(scores, labels)
    xs, ys = adapter.knots_x, adapter.knots_y
    assert all(b > a for a, b in itertools.pairwise(xs))
    assert all(b > a for a, b in itertools.pairwise(ys))
    grid = sorted([*scores, 0.0, 1.0])
    preds = [adapter.predict(s) for s in grid]
    assert all(b >= a for a, b in itertools.pairwise(preds))  # type: ignore[operator]
    ref_x, ref_y = _naive_isotonic(scores, labels)
    assert xs == pytest.approx(ref_x, abs=1e-12)
    assert ys == pytest.approx(ref_y, abs=1e-12)


def _naive_isotonic(scores: list[float], labels: list[int]) -> tuple[list[float], list[float]]:
    """Reference: merge the first violating neighbours until none is left (quadratic, obvious)."""
    blocks: list[list[float]] = []  # [weight, label sum, score sum]
    for x in sorted(set(scores)):
        members = [y for s, y in zip(scores, labels, strict=True) if s == x]
        blocks.append([len(members), sum(members), x * len(members)])
    merged = True
    while merged:
        merged = False
        for i in range(len(blocks) - 1):
            if blocks[i][1] / blocks[i][0] >= blocks[i + 1][1] / blocks[i + 1][0]:
                nxt = blocks.pop(i + 1)
                blocks[i] = [a + b for a, b in zip(blocks[i], nxt, strict=True)]
                merged = True
                break
    return [b[2] / b[0] for b in blocks], [b[1] / b[0] for b in blocks]


@settings(max_examples=50, deadline=None)
@given(st.floats(0.2, 3.0), st.floats(-1.0, 1.0), st.integers(0, 10_000))
def test_platt_is_monotone_and_keeps_ranking(sharpness: float, shift: float, seed: int) -> None:
    scores, labels = miscalibrated_scores(300, seed=seed, sharpness=sharpness, shift=shift)
    adapter = CalibrationAdapter("platt")
    if not adapter.fit(scores, labels):
        assert adapter.fit_report["fitted"] is False
        return
    preds = [adapter.predict(s) for s in sorted(scores)]
    assert all(b >= a for a, b in itertools.pairwise(preds))  # type: ignore[operator]


def test_fit_refuses_small_or_one_class_data(caplog: pytest.LogCaptureFixture) -> None:
    adapter = CalibrationAdapter()
    with caplog.at_level(logging.WARNING, logger="resontinex.trust.calibration"):
        assert adapter.fit([0.5] * 49, [0, 1] * 24 + [1]) is False
    assert "at least 50" in adapter.fit_report["reason"]
    assert "calibration_fit_refused" in caplog.text
    assert adapter.predict(0.5) is None
    assert not adapter.is_fitted
    assert adapter.fit([0.1 * (i % 10) for i in range(100)], [1] * 100) is False
    assert "one class" in adapter.fit_report["reason"]


def test_platt_refuses_an_inverted_relationship() -> None:
    scores, labels = miscalibrated_scores(1000, seed=5)
    adapter = CalibrationAdapter("platt")
    assert adapter.fit(scores, [1 - y for y in labels]) is False
    assert "slope" in adapter.fit_report["reason"]


@pytest.mark.parametrize(
    ("scores", "labels", "match"),
    [
        ([0.5, math.nan], [0, 1], r"scores\[1\]"),
        ([0.5, 1.5], [0, 1], r"scores\[1\]"),
        ([0.5, -0.1], [0, 1], r"scores\[1\]"),
        ([0.5, math.inf], [0, 1], r"scores\[1\]"),
        ([0.5, True], [0, 1], r"scores\[1\]"),
        ([0.5, "0.3"], [0, 1], r"scores\[1\]"),
        ([0.5, None], [0, 1], r"scores\[1\]"),
        ([0.5, 0.5], [0, 2], r"labels\[1\]"),
        ([0.5, 0.5], [0, "yes"], r"labels\[1\]"),
        ([0.5, 0.5], [0, 0.5], r"labels\[1\]"),
        ([0.5, 0.5], [0], "length"),
        ("0.5", [0], "string"),
    ],
)
def test_bad_calibration_data_is_typed(scores: object, labels: object, match: str) -> None:
    with pytest.raises(CalibrationError, match=match):
        CalibrationAdapter().fit(scores, labels)  # type: ignore[arg-type]


def test_bad_adapter_arguments() -> None:
    with pytest.raises(CalibrationError, match="method"):
        CalibrationAdapter("magic")
    with pytest.raises(CalibrationError, match="backend"):
        CalibrationAdapter(backend="gpu")
    with pytest.raises(CalibrationError, match="min_samples"):
        CalibrationAdapter(min_samples=True)  # type: ignore[arg-type]


def test_predict_validates_its_score(
    data: tuple[list[float], list[int], list[float], list[int]],
) -> None:
    adapter = CalibrationAdapter("platt")
    assert adapter.fit(data[0], data[1])
    for bad in (math.nan, 1.5, "x", None, True):
        with pytest.raises(CalibrationError, match="score"):
            adapter.predict(bad)  # type: ignore[arg-type]
    with pytest.raises(CalibrationError):
        CalibrationAdapter().predict_many([0.5])


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_json_round_trip(
    data: tuple[list[float], list[int], list[float], list[int]], method: str
) -> None:
    adapter = CalibrationAdapter(method)
    assert adapter.fit(data[0], data[1])
    clone = CalibrationAdapter.from_json(adapter.to_json())
    assert clone.fitted_method == method
    for s in data[2][:200]:
        assert clone.predict(s) == adapter.predict(s)
    unfitted = CalibrationAdapter.from_json(CalibrationAdapter().to_json())
    assert unfitted.predict(0.3) is None


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: "not json{",
        lambda d: json.dumps([1, 2]),
        lambda d: json.dumps({**d, "format": "pickle"}),
        lambda d: json.dumps({**d, "format_version": 99}),
        lambda d: json.dumps({k: v for k, v in d.items() if k != "knots_x"}),
        lambda d: json.dumps({**d, "knots_x": [0.5, 0.4], "knots_y": [0.1, 0.2]}),
        lambda d: json.dumps({**d, "knots_y": [0.9, 0.1]}),
        lambda d: json.dumps({**d, "knots_x": [0.1, 7.0]}),
        lambda d: json.dumps({**d, "knots_x": []}),
        lambda d: json.dumps({**d, "fitted_method": "platt", "platt": [-1.0, 0.0]}),
        lambda d: json.dumps({**d, "fitted_method": "platt", "platt": ["a", 0.0]}),
        lambda d: json.dumps({**d, "fitted_method": "neural"}),
        lambda d: json.dumps({**d, "method": "neural"}),
    ],
)
def test_corrupted_json_is_rejected(mutate: object) -> None:
    good = {
        "format": "resontinex-trust/calibrator",
        "format_version": 1,
        "method": "isotonic",
        "fitted_method": "isotonic",
        "platt": None,
        "knots_x": [0.1, 0.9],
        "knots_y": [0.2, 0.7],
        "min_samples": 50,
        "isotonic_min_samples": 500,
    }
    assert CalibrationAdapter.from_json(json.dumps(good)).predict(0.5) == pytest.approx(0.45)
    with pytest.raises(CalibrationError):
        CalibrationAdapter.from_json(mutate(good))  # type: ignore[operator]


def test_calibrated_gate_uses_the_adapter(
    data: tuple[list[float], list[int], list[float], list[int]],
) -> None:
    adapter = CalibrationAdapter("isotonic")
    assert adapter.fit(data[0], data[1])
    gate = CompositeTrustGate(InputVector(0.8, 0.3, 0.2), calibrator=adapter)
    assert gate.trust_score == adapter.predict(gate.raw_trust_score)
    assert gate.calibrated_trust_score == gate.trust_score


def test_metrics_on_known_values() -> None:
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    assert roc_auc([0.5, 0.5], [0, 1]) == 0.5
    assert math.isnan(roc_auc([0.1, 0.2], [1, 1]))
    assert expected_calibration_error([0.0, 1.0], [0, 1], n_bins=2) == 0.0
    assert expected_calibration_error([0.2] * 10, [1] * 10, n_bins=15) == pytest.approx(0.8)
    rep = calibration_report([0.25, 0.75], [0, 1], n_bins=2)
    assert rep["brier"] == pytest.approx(0.0625)
    assert [row["count"] for row in rep["reliability"]] == [1, 1]


def test_roc_auc_matches_brute_force() -> None:
    rng = random.Random(4)
    scores = [round(rng.random(), 1) for _ in range(300)]
    labels = [int(rng.random() < s) for s in scores]
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    brute = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))
    assert roc_auc(scores, labels) == pytest.approx(brute, abs=1e-12)


def test_reliability_diagram_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    scores, labels = miscalibrated_scores(500, seed=9)
    path = tmp_path / "reliability.png"
    assert reliability_diagram(path, {"raw": calibration_report(scores, labels)})
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_numpy_inputs_are_checked_like_lists() -> None:
    np = pytest.importorskip("numpy")
    scores, labels = miscalibrated_scores(400, seed=8)
    from_arrays = CalibrationAdapter("isotonic")
    from_lists = CalibrationAdapter("isotonic")
    assert from_arrays.fit(np.asarray(scores), np.asarray(labels, dtype=np.int64))
    assert from_lists.fit(scores, labels)
    assert from_arrays.knots_x == from_lists.knots_x
    assert from_arrays.knots_y == from_lists.knots_y
    with pytest.raises(CalibrationError, match=r"scores\[1\]"):
        CalibrationAdapter().fit(np.asarray([0.5, np.nan]), np.asarray([0, 1]))
    with pytest.raises(CalibrationError, match=r"labels\[1\]"):
        CalibrationAdapter().fit(np.asarray([0.5, 0.5]), np.asarray([0, 2]))
    with pytest.raises(CalibrationError, match="length"):
        CalibrationAdapter().fit(np.asarray([0.5, 0.5]), np.asarray([0]))


def test_huge_calibration_data_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import resontinex.trust.calibration as calibration

    monkeypatch.setattr(calibration, "MAX_SAMPLES", 100)
    with pytest.raises(CalibrationError, match="more than 100 samples"):
        CalibrationAdapter().fit([0.5] * 101, [0, 1] * 50 + [1])
