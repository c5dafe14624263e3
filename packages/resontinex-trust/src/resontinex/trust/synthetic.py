"""Deterministic synthetic data for the demo, the tests and the benchmarks.

``miscalibrated_scores`` draws a latent log-odds z ~ N(0, σ), an outcome y ~ Bernoulli(σ(z)),
and reports an over-confident, shifted score σ(k·z + shift): a well-ranked but miscalibrated
source, the case calibration exists for.
"""

from __future__ import annotations

import math
import random

__all__ = ["DEMO_STREAM", "miscalibrated_scores"]

DEMO_STREAM: tuple[tuple[str, float, float, float], ...] = (
    ("routine refund, strong alignment", 0.92, 0.08, 0.10),
    ("known workflow, moderate risk", 0.80, 0.30, 0.20),
    ("new tool call, some doubt", 0.70, 0.40, 0.35),
    ("borderline plan under the floor", 0.62, 0.45, 0.45),
    ("confident answer, wide uncertainty band", 0.97, 0.03, 0.80),
    ("contested claim", 0.45, 0.55, 0.50),
    ("weak evidence, high risk", 0.30, 0.70, 0.60),
    ("hallucination suspected", 0.10, 0.90, 0.85),
    ("neutral signals", 0.50, 0.50, 0.50),
    ("clean data migration", 0.88, 0.15, 0.15),
)
"""(label, alignment_score, epistemic_risk, confidence_band) for the demo's signal stream."""


def miscalibrated_scores(
    n: int, seed: int = 0, *, sharpness: float = 2.5, shift: float = 0.8, spread: float = 1.5
) -> tuple[list[float], list[int]]:
    """``n`` (score, label) pairs from a ranked-well, calibrated-badly source."""
    rng = random.Random(seed)
    scores: list[float] = []
    labels: list[int] = []
    for _ in range(n):
        z = rng.gauss(0.0, spread)
        labels.append(1 if rng.random() < 1.0 / (1.0 + math.exp(-z)) else 0)
        scores.append(1.0 / (1.0 + math.exp(-(sharpness * z + shift))))
    return scores, labels
