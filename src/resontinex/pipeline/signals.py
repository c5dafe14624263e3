"""How the monitored signals of one answer become the trust gate's three inputs.

The mapping is monotone by construction, so no signal can buy trust it did not earn:

- ``confidence_band`` = mean per-token entropy / ln(vocabulary size), clipped to [0, 1]. More
  entropy gives a wider band, and the gate's trust is non-increasing in the band.
- ``epistemic_risk`` = 1 − (1 − token risk)(1 − drift risk). Token risk = 1 − 1/perplexity,
  i.e. one minus the geometric-mean probability the model gave its own tokens; drift risk is
  ``drift_risk`` while hbt-core flags behavioural drift (else 0). Either source alone raises the
  risk; together they compound like independent failures.
- ``alignment_score`` = the judge's overall score when a judge scored the answer, otherwise
  ``alignment_without_judge``: a stated prior, because without a judge nothing here measures
  alignment, and inventing a number from perplexity would claim what it cannot know.

An answer with no tokens (empty generation) maps to the worst case: band 1, token risk 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from resontinex.pipeline.errors import PipelineConfigError
from resontinex.trust import InputVector


def _unit(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise PipelineConfigError(
            f"signal_mapping.{name} must be a number in [0, 1], got {value!r}"
        )
    return float(value)


@dataclass(frozen=True)
class SignalMapping:
    """The configurable constants of the mapping (see the module docstring)."""

    alignment_without_judge: float = 0.75
    drift_risk: float = 0.6

    def __post_init__(self) -> None:
        _unit("alignment_without_judge", self.alignment_without_judge)
        _unit("drift_risk", self.drift_risk)


@dataclass(frozen=True)
class MonitoredSignals:
    """What the pipeline measured about one answer, before mapping."""

    mean_entropy_nats: float | None
    perplexity: float | None
    vocab_size: int
    judge_score: float | None
    drift_flagged: bool


def to_input_vector(signals: MonitoredSignals, mapping: SignalMapping) -> InputVector:
    """Map measured signals to the gate's InputVector (monotone in every signal)."""
    if signals.vocab_size < 2:
        raise PipelineConfigError(f"vocab_size must be at least 2, got {signals.vocab_size!r}")
    if signals.mean_entropy_nats is None:
        band = 1.0
    else:
        band = min(1.0, max(0.0, signals.mean_entropy_nats / math.log(signals.vocab_size)))
    token_risk = 1.0 if signals.perplexity is None else 1.0 - 1.0 / max(1.0, signals.perplexity)
    drift_risk = mapping.drift_risk if signals.drift_flagged else 0.0
    risk = 1.0 - (1.0 - token_risk) * (1.0 - drift_risk)
    alignment = (
        mapping.alignment_without_judge if signals.judge_score is None else signals.judge_score
    )
    return InputVector(
        alignment_score=alignment,
        epistemic_risk=min(1.0, max(0.0, risk)),
        confidence_band=band,
    )
