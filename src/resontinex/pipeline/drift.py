"""hbt-core watching the serving model's behaviour while requests flow.

At start the watch fingerprints the serving model over a challenge set and calibrates its
thresholds on a same-model null (hbt-core's ``ProductionHBT``). After each request the pipeline
calls :meth:`DriftWatch.check`: hbt-core's ``MonitoringService`` re-encodes a sample of probes,
folds them into the decayed (incrementally updated) signature and feeds a Bernoulli CUSUM. An
alarm latches ``flagged`` until an operator calls :meth:`acknowledge` after re-baselining.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hbt_core import ProductionHBT
from hbt_core.monitor import Alert, MonitorConfig, MonitoringService


@dataclass(frozen=True)
class DriftSettings:
    """How much fingerprinting the watch does (cost grows with probes × samples × dim)."""

    # "logit": next-token distributions of the served model (needs logits, i.e. a local model);
    # "text": shingles of sampled generations, for black-box APIs (much weaker on tiny models).
    mode: str = "logit"
    n_probes: int = 16
    dim: int = 8192
    n_samples: int = 2
    calibration_runs: int = 3
    sample_rate: float = 0.25
    drift_sensitivity: float = 0.05


class DriftWatch:
    """The serving model's reference fingerprint and a running drift test against it."""

    def __init__(
        self, model: Any, settings: DriftSettings | None = None, *, registry: Any = None
    ) -> None:
        self.settings = settings or DriftSettings()
        s = self.settings
        self.hbt = ProductionHBT(
            config={
                "mode": s.mode,
                "n_probes": s.n_probes,
                "dim": s.dim,
                "n_samples": s.n_samples,
                "calibration_runs": s.calibration_runs,
            },
            registry=registry,
        )
        self.reference = self.hbt.build_signature(model)
        self.calibration = self.hbt.calibrate(model, self.reference)
        self.service = MonitoringService(
            model,
            self.reference,
            self.hbt.probes,
            self.calibration,
            MonitorConfig(sample_rate=s.sample_rate, drift_sensitivity=s.drift_sensitivity),
            registry=registry,
        )
        self.flagged = False

    @property
    def served_model(self) -> Any:
        return self.service.model

    def serve(self, model: Any) -> None:
        """The serving model was replaced (a deploy, a hot swap): watch the new one."""
        self.service.model = model

    async def check(self) -> Alert | None:
        """One sampling round; an alarm latches ``flagged``."""
        alert = await self.service.check_once()
        if alert is not None:
            self.flagged = True
        return alert

    def acknowledge(self) -> None:
        """An operator re-baselined the model; clear the latch."""
        self.flagged = False

    def status(self) -> dict[str, Any]:
        return {
            "flagged": self.flagged,
            "checks": self.service.checks,
            "alerts": [a.kind for a in self.service.alerts],
            "reference_root": self.reference.root.hex(),
            "probe_threshold": self.calibration.probe_threshold,
        }
