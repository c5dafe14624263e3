"""Structural types shared by the gate, the monitor and the batch path (for type checkers)."""

from __future__ import annotations

from typing import Protocol

__all__ = ["ScoreCalibrator"]


class ScoreCalibrator(Protocol):
    """What the gate needs from a calibrator: a monotone map of the raw score, None if unfitted."""

    def predict(self, score: float) -> float | None: ...
