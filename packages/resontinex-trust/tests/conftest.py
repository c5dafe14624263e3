"""Shared fixtures for the resontinex-trust tests (no importable helper modules: importlib mode)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest

from resontinex.trust import (
    AuditLog,
    CompositeTrustGate,
    InputVector,
    TrustConfig,
    default_config,
)


@pytest.fixture
def config() -> TrustConfig:
    return default_config()


@pytest.fixture
def audit_log(tmp_path: Path) -> AuditLog:
    return AuditLog(tmp_path / "audit" / "break_glass.jsonl")


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> str:
    """A fresh database from the repo root's ``postgresql_url`` fixture (tests marked
    ``postgres``); skipped where that fixture is absent, as in an isolated copy of the tests."""
    try:
        url: str = request.getfixturevalue("postgresql_url")
    except pytest.FixtureLookupError:
        pytest.skip("no PostgreSQL fixture here (the repo root's conftest.py provides it)")
    return url


@pytest.fixture
def alignment_for_score() -> Callable[[float, TrustConfig], float]:
    """Smallest alignment (risk = band = 0.5) whose raw score reaches ``target``, by bisection."""

    def find(target: float, cfg: TrustConfig) -> float:
        def score(a: float) -> float:
            return CompositeTrustGate(InputVector(a, 0.5, 0.5), cfg).raw_trust_score

        lo, hi = 0.0, 1.0
        for _ in range(200):
            mid = (lo + hi) / 2
            if score(mid) < target:
                lo = mid
            else:
                hi = mid
        while score(math.nextafter(hi, 0.0)) >= target:
            hi = math.nextafter(hi, 0.0)
        return hi

    return find


class FixedCalibrator:
    """A calibrator that always answers one value: isolates the tier mapping from the math."""

    def __init__(self, value: float | None) -> None:
        self.value = value
        self.is_fitted = value is not None

    def predict(self, score: float) -> float | None:
        return self.value


@pytest.fixture
def fixed_calibrator() -> type[FixedCalibrator]:
    return FixedCalibrator


class SwitchCalibrator:
    """Raises while ``broken`` is set (a failing part: a service error for the monitor's
    health and breaker); otherwise unfitted, so the raw score decides."""

    def __init__(self) -> None:
        self.broken = False

    def predict(self, score: float) -> float | None:
        if self.broken:
            raise RuntimeError("calibration service unavailable")
        return None


@pytest.fixture
def switch() -> SwitchCalibrator:
    return SwitchCalibrator()
