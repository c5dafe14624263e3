"""CUSUM calibration meets its false-alarm rate; drift types are recognised on generated streams."""

from __future__ import annotations

import numpy as np
import pytest

from hbt_core.drift import (
    DRIFT_TYPES,
    BernoulliCUSUM,
    calibrate_cusum,
    classify_drift,
    generate_stream,
    variance_stable,
)
from hbt_core.errors import InvalidInputError


def test_calibrated_false_alarm_rate_and_detection() -> None:
    q0, q1, horizon = 0.05, 0.3, 300
    h = calibrate_cusum(q0, q1, horizon, 0.05, n_sim=2000, seed=0)
    rng = np.random.default_rng(99)
    alarms = 0
    for _ in range(600):
        c = BernoulliCUSUM(q0, q1, h)
        alarms += any(c.update(x) for x in rng.random(horizon) < q0)
    assert 0.02 <= alarms / 600 <= 0.09
    delays = []
    for _ in range(100):
        c = BernoulliCUSUM(q0, q1, h)
        for t, x in enumerate(rng.random(horizon) < q1, start=1):
            if c.update(x):
                delays.append(t)
                break
    assert len(delays) == 100
    assert float(np.median(delays)) < 30


def test_drift_types_are_classified() -> None:
    correct = {k: 0 for k in DRIFT_TYPES}
    for kind in DRIFT_TYPES:
        for seed in range(30):
            s = generate_stream(kind, seed=seed)
            got = classify_drift(s.similarity, s.domains, s.variance, s.change_point, 0.9, 0.01)
            correct[kind] += got.kind == kind
    assert all(v >= 27 for v in correct.values()), correct


def test_variance_stability() -> None:
    assert variance_stable([0.1, 0.1], [0.11, 0.09])[0]
    stable, ratio = variance_stable([0.1], [0.5])
    assert not stable
    assert ratio > 4
    with pytest.raises(InvalidInputError):
        variance_stable([np.nan], [0.1])


def test_bad_inputs() -> None:
    with pytest.raises(InvalidInputError):
        calibrate_cusum(0.3, 0.1)
    with pytest.raises(InvalidInputError):
        calibrate_cusum(0.05, 0.3, false_alarm_rate=True)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        generate_stream("storm")
    with pytest.raises(InvalidInputError):
        classify_drift([0.9] * 20, [0] * 19, [0.1] * 20, 5, 0.9, 0.01)
