"""The vocabulary of the gate: input signals, risk tiers and decisions.

``InputVector`` does one fast type and range check per field on the hot path (``type(x) is
float`` and a chained comparison, which also rejects NaN); everything unusual falls through to
the slow, explicit checker that names the field and the value.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from enum import Enum
from numbers import Real

from resontinex.trust.errors import TrustInputError, TrustInputTypeError

__all__ = [
    "DECISIONS",
    "SIGNAL_NAMES",
    "TIERS",
    "Decision",
    "InputVector",
    "RiskTier",
    "check_probability",
    "route_to_resontinex",
]

SIGNAL_NAMES = ("alignment_score", "epistemic_risk", "confidence_band")


class Decision(str, Enum):
    """What the caller should do. Values are the lowercase verbs, and the ``str`` mixin makes
    ``gate.decision == "execute"`` hold, as the seed's quick start compares it. Configs may
    name decisions in any case (``ABORT``, ``abort``)."""

    EXECUTE = "execute"
    REVIEW = "review"
    DEFER = "defer"
    ABORT = "abort"

    def __str__(self) -> str:
        return self.value


class RiskTier(str, Enum):
    """Risk tiers in ascending order of trust; each has an inclusive upper bound in the config."""

    BLOCK = "block"
    REVIEW = "review"
    MONITOR = "monitor"
    PASS = "pass"

    def __str__(self) -> str:
        return self.value


TIERS: tuple[RiskTier, ...] = tuple(RiskTier)
DECISIONS: tuple[Decision, ...] = tuple(Decision)

_VERBS = {
    Decision.EXECUTE: "execute",
    Decision.REVIEW: "review",
    Decision.DEFER: "defer",
    Decision.ABORT: "abort",
}


def route_to_resontinex(decision: Decision | str) -> str:
    """Map a decision (or its name, any case) to the RESONTINEX execution verb.

    The verbs are "execute", "review", "defer" and "abort".
    """
    if isinstance(decision, str) and decision.upper() in Decision.__members__:
        return _VERBS[Decision[decision.upper()]]
    raise TrustInputError(f"decision: unknown decision {decision!r}")


def check_probability(field: str, value: object) -> float:
    """Return ``value`` as a float in [0, 1] or raise a typed error naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TrustInputTypeError(
            f"{field}: expected a real number in [0, 1], got {type(value).__name__} {value!r}"
        )
    try:
        number = float(value)
    except (OverflowError, TypeError, ValueError):  # 10**400, or a Real whose float() fails
        raise TrustInputError(f"{field}: must be in [0, 1], got {value!r}") from None
    if not math.isfinite(number):
        raise TrustInputError(f"{field}: must be finite, got {value!r}")
    if not 0.0 <= number <= 1.0:
        raise TrustInputError(f"{field}: must be in [0, 1], got {value!r}")
    return number


class InputVector:
    """The three signals, each a probability in [0, 1]: validated on creation, read-only.

    ``alignment_score`` raises trust; ``epistemic_risk`` and ``confidence_band`` (the width of
    the uncertainty band) lower it. Values live in private slots behind read-only properties:
    a slotted class is cheaper to build than a tuple subclass, and assignment raises.
    """

    __slots__ = ("_alignment_score", "_confidence_band", "_epistemic_risk")

    def __init__(
        self, alignment_score: float, epistemic_risk: float, confidence_band: float
    ) -> None:
        # Fast path: exact floats inside [0, 1] (NaN fails the comparison).
        if not (type(alignment_score) is float and 0.0 <= alignment_score <= 1.0):
            alignment_score = check_probability("alignment_score", alignment_score)
        if not (type(epistemic_risk) is float and 0.0 <= epistemic_risk <= 1.0):
            epistemic_risk = check_probability("epistemic_risk", epistemic_risk)
        if not (type(confidence_band) is float and 0.0 <= confidence_band <= 1.0):
            confidence_band = check_probability("confidence_band", confidence_band)
        self._alignment_score = alignment_score
        self._epistemic_risk = epistemic_risk
        self._confidence_band = confidence_band

    @property
    def alignment_score(self) -> float:
        return self._alignment_score

    @property
    def epistemic_risk(self) -> float:
        return self._epistemic_risk

    @property
    def confidence_band(self) -> float:
        return self._confidence_band

    def __iter__(self) -> Iterator[float]:
        return iter((self._alignment_score, self._epistemic_risk, self._confidence_band))

    def __len__(self) -> int:
        return 3

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, InputVector):
            return NotImplemented
        return tuple(self) == tuple(other)

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return (
            f"InputVector(alignment_score={self._alignment_score!r}, "
            f"epistemic_risk={self._epistemic_risk!r}, confidence_band={self._confidence_band!r})"
        )

    def __reduce__(self) -> tuple[type[InputVector], tuple[float, float, float]]:
        return (InputVector, (self._alignment_score, self._epistemic_risk, self._confidence_band))

    def as_dict(self) -> dict[str, float]:
        return dict(zip(SIGNAL_NAMES, self, strict=True))

    def replace(self, **changes: float) -> InputVector:
        """A copy with some fields changed, validated like a new vector."""
        unknown = set(changes) - set(SIGNAL_NAMES)
        if unknown:
            raise TrustInputTypeError(f"InputVector: unknown field(s) {sorted(unknown)}")
        return InputVector(**{**self.as_dict(), **changes})
