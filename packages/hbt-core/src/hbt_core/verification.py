"""Verification: is a candidate the reference model? Calibrated thresholds and a sequential test.

Thresholds come from a same-model null: the reference model fingerprinted again under fresh
perturbation seeds (and sampling seeds in text mode). A probe "agrees" when its similarity to
the reference leaf is at least the pooled ``alpha_probe`` quantile of the null's per-probe
similarities, so under the null a probe agrees with probability ``p0 ~ 1 - alpha_probe``.
Wald's SPRT over the agreement stream decides "same" or "different" at stated alpha and beta and
reports the number of probes it needed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

from hbt_core.errors import DimensionMismatchError, InvalidInputError, check_finite_number
from hbt_core.files import atomic_write
from hbt_core.hdc import dim_of
from hbt_core.signature import Signature

FloatArray = npt.NDArray[np.float64]


def per_probe_similarity(reference: Signature, candidate: Signature) -> FloatArray:
    """Normalised Hamming similarity of each probe's leaf (same probes, same dimension)."""
    if reference.probe_ids != candidate.probe_ids:
        raise InvalidInputError("reference and candidate were built on different probe sets")
    if reference.dim != candidate.dim:
        raise DimensionMismatchError(f"dims differ: {reference.dim} vs {candidate.dim}")
    diff = np.bitwise_count(np.bitwise_xor(reference.leaves, candidate.leaves)).sum(axis=1)
    return 1.0 - diff / dim_of(reference.leaves)


@dataclass(frozen=True)
class SequentialResult:
    """Outcome of Wald's SPRT over a stream of per-probe agreements."""

    decision: str  # "same", "different" or "undecided"
    queries: int
    log_likelihood_ratio: float
    alpha: float
    beta: float


def sprt(
    agreements: Sequence[bool] | npt.NDArray[np.bool_],
    p0: float,
    p1: float,
    alpha: float = 0.01,
    beta: float = 0.01,
) -> SequentialResult:
    """Wald's SPRT of H0: P(agree)=p0 (same model) against H1: P(agree)=p1 < p0 (different)."""
    a = check_finite_number("alpha", alpha, low=1e-12, high=0.5)
    b = check_finite_number("beta", beta, low=1e-12, high=0.5)
    q0 = check_finite_number("p0", p0, low=1e-9, high=1 - 1e-9)
    q1 = check_finite_number("p1", p1, low=1e-9, high=1 - 1e-9)
    if q1 >= q0:
        raise InvalidInputError(f"p1 must be below p0, got p1={p1} p0={p0}")
    upper, lower = math.log((1 - b) / a), math.log(b / (1 - a))
    agree_step, disagree_step = math.log(q1 / q0), math.log((1 - q1) / (1 - q0))
    llr, n = 0.0, 0
    for n, agree in enumerate(agreements, start=1):
        llr += agree_step if agree else disagree_step
        if llr >= upper:
            return SequentialResult("different", n, llr, a, b)
        if llr <= lower:
            return SequentialResult("same", n, llr, a, b)
    return SequentialResult("undecided", n, llr, a, b)


CALIBRATION_FORMAT = 1


@dataclass(frozen=True)
class Calibration:
    """Thresholds learned from same-model repeat runs, bound to the reference they were
    learned on (``reference_root``; empty only for calibrations built by hand)."""

    probe_threshold: float
    p0: float
    score_threshold: float
    null_scores: tuple[float, ...]
    alpha: float
    alpha_probe: float
    reference_root: bytes = b""

    def __post_init__(self) -> None:
        check_finite_number("probe_threshold", self.probe_threshold, low=0.0, high=1.0)
        check_finite_number("p0", self.p0, low=0.5, high=0.999)
        check_finite_number("score_threshold", self.score_threshold, low=0.0, high=1.0)
        check_finite_number("alpha", self.alpha, low=1e-9, high=0.5)
        check_finite_number("alpha_probe", self.alpha_probe, low=1e-3, high=0.5)
        if len(self.null_scores) < 2:
            raise InvalidInputError("null_scores needs >= 2 values")
        for i, v in enumerate(self.null_scores):
            check_finite_number(f"null_scores[{i}]", v, low=0.0, high=1.0)
        if not isinstance(self.reference_root, bytes) or len(self.reference_root) not in (0, 32):
            raise InvalidInputError("reference_root must be a 32-byte Merkle root")

    def to_json(self) -> dict[str, Any]:
        return {
            "format": CALIBRATION_FORMAT,
            "probe_threshold": self.probe_threshold,
            "p0": self.p0,
            "score_threshold": self.score_threshold,
            "null_scores": list(self.null_scores),
            "alpha": self.alpha,
            "alpha_probe": self.alpha_probe,
            "reference_root": self.reference_root.hex(),
        }

    @classmethod
    def from_json(cls, obj: object) -> Calibration:
        """Parse and validate; every problem is an :class:`InvalidInputError` naming the key."""
        if not isinstance(obj, dict):
            raise InvalidInputError(f"calibration must be a JSON object, got {type(obj).__name__}")
        if obj.get("format") != CALIBRATION_FORMAT:
            raise InvalidInputError(
                f"calibration format must be {CALIBRATION_FORMAT}, got {obj.get('format')!r}"
            )
        expected = set(cls.__dataclass_fields__) | {"format"}
        if set(obj) != expected:
            raise InvalidInputError(
                f"calibration keys must be {sorted(expected)}, got {sorted(obj)}"
            )
        scores, root = obj["null_scores"], obj["reference_root"]
        if not isinstance(scores, list):
            raise InvalidInputError("calibration null_scores must be a list")
        try:
            root_bytes = bytes.fromhex(root)
        except (TypeError, ValueError):
            raise InvalidInputError("calibration reference_root must be hex") from None
        if len(root_bytes) != 32:
            raise InvalidInputError("calibration reference_root must be a 32-byte root")
        return cls(
            obj["probe_threshold"],
            obj["p0"],
            obj["score_threshold"],
            tuple(scores),
            obj["alpha"],
            obj["alpha_probe"],
            root_bytes,
        )

    def save(self, path: str | Path) -> None:
        """Write as JSON, atomically (temp file + ``os.replace``)."""
        atomic_write(path, json.dumps(self.to_json(), indent=2, allow_nan=False).encode())

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise InvalidInputError(f"cannot read calibration {str(path)!r}: {exc}") from None
        return cls.from_json(raw)

    @classmethod
    def from_null(
        cls,
        reference: Signature,
        null_runs: Sequence[Signature],
        alpha: float = 0.01,
        alpha_probe: float = 0.05,
    ) -> Calibration:
        """Calibrate on signatures of the reference model under other run seeds (>= 2)."""
        if len(null_runs) < 2:
            raise InvalidInputError(f"null_runs needs >= 2 signatures, got {len(null_runs)}")
        seeds = [s.run_seed for s in null_runs]
        if reference.run_seed in seeds or len(set(seeds)) != len(seeds):
            raise InvalidInputError(
                f"null_runs must use distinct run seeds other than the reference's "
                f"({reference.run_seed}), got {seeds}"
            )
        for i, s in enumerate(null_runs):
            if s.model_name != reference.model_name or s.config != reference.config:
                raise InvalidInputError(
                    f"null_runs[{i}] is not the reference model under the same encoder "
                    f"(model {s.model_name!r} vs {reference.model_name!r})"
                )
        check_finite_number("alpha", alpha, low=1e-9, high=0.5)
        check_finite_number("alpha_probe", alpha_probe, low=1e-3, high=0.5)
        sims = np.stack([per_probe_similarity(reference, s) for s in null_runs])
        probe_threshold = float(np.quantile(sims, alpha_probe, method="lower"))
        p0 = float(np.clip(np.mean(sims >= probe_threshold), 0.5, 0.999))
        scores = sims.mean(axis=1)
        spread = max(float(scores.std(ddof=1)), 1e-4)
        z = NormalDist().inv_cdf(1 - alpha)
        score_threshold = float(min(scores.min(), scores.mean() - z * spread))
        return cls(
            probe_threshold,
            p0,
            score_threshold,
            tuple(float(s) for s in scores),
            alpha,
            alpha_probe,
            reference.root,
        )


@dataclass(frozen=True)
class VerificationResult:
    """Similarity, calibrated decision and the sequential test's queries to decision."""

    similarity: float
    score_threshold: float
    same_model: bool
    per_probe: tuple[float, ...]
    sequential: SequentialResult
    variance_ratio: float
    details: dict[str, float] = field(default_factory=dict)


def verify(
    reference: Signature,
    candidate: Signature,
    calibration: Calibration,
    p1: float = 0.5,
    beta: float = 0.01,
) -> VerificationResult:
    """Compare a candidate signature with the reference using calibrated thresholds."""
    if calibration.reference_root and calibration.reference_root != reference.root:
        raise InvalidInputError("calibration was learned on a different reference signature")
    sims = per_probe_similarity(reference, candidate)
    score = float(sims.mean())
    agreements = sims >= calibration.probe_threshold
    seq = sprt(agreements, calibration.p0, min(p1, calibration.p0 - 1e-3), calibration.alpha, beta)
    ref_var = float(reference.variances.mean())
    ratio = float(candidate.variances.mean()) / ref_var if ref_var > 0 else math.inf
    return VerificationResult(
        score,
        calibration.score_threshold,
        score >= calibration.score_threshold,
        tuple(float(s) for s in sims),
        seq,
        ratio,
        {"agreement_rate": float(agreements.mean())},
    )


def auroc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """P(score of a positive > score of a negative), ties counted half (Mann-Whitney U)."""
    pos, neg = np.asarray(positives, float), np.asarray(negatives, float)
    if pos.size == 0 or neg.size == 0:
        raise InvalidInputError("auroc needs at least one positive and one negative score")
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (pos.size * neg.size))
