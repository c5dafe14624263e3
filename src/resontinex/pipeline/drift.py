"""hbt-core watching the serving model's behaviour while requests flow.

At start the watch fingerprints the serving model over a challenge set and calibrates its
thresholds on a same-model null (hbt-core's ``ProductionHBT``). Then, off the request path, a
schedule (:meth:`DriftWatch.start`, every ``interval_s``) runs :meth:`DriftWatch.check`:
hbt-core's ``MonitoringService`` re-encodes a sample of probes, folds them into the decayed
(incrementally updated) signature and feeds a Bernoulli CUSUM. The probes of a local model are
background jobs of its :class:`~resontinex.pipeline.worker.ModelWorker`, run in its idle time,
so no request waits for a fingerprint. An alarm latches ``flagged``, which raises the risk of
every later request, until an operator calls :meth:`acknowledge` after re-baselining.

The latch lives in a :class:`~resontinex.pipeline.state.DriftLatch` (SQLite in the state
directory, or the shared PostgreSQL database), so it survives restarts and one replica's alarm
flags them all. A latch that cannot be read counts as set (fail closed); an alarm that could not
be written is held in this process and written again at the next check.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from dataclasses import dataclass
from typing import Any

from hbt_core import ProductionHBT
from hbt_core.monitor import Alert, MonitorConfig, MonitoringService
from resontinex.pipeline.errors import PipelineConfigError, StateStoreError
from resontinex.pipeline.state import DriftLatch, MemoryLatch

log = logging.getLogger("resontinex.pipeline.drift")


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
    interval_s: float = 5.0  # seconds between scheduled checks

    def __post_init__(self) -> None:
        interval = self.interval_s
        if (
            isinstance(interval, bool)
            or not isinstance(interval, int | float)
            or not math.isfinite(interval)
            or interval <= 0
        ):
            raise PipelineConfigError(
                f"drift.interval_s must be a positive number of seconds, got {interval!r}"
            )


class DriftWatch:
    """The serving model's reference fingerprint and a running drift test against it."""

    def __init__(
        self,
        model: Any,
        settings: DriftSettings | None = None,
        *,
        registry: Any = None,
        latch: DriftLatch | None = None,
    ) -> None:
        """``latch`` defaults to one held in this process's memory."""
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
        self.latch: DriftLatch = latch or MemoryLatch()
        self._unsaved_alarm = False  # an alarm the latch store refused, written at the next check
        self.failures = 0  # scheduled checks that raised (logged; the latch is left as it was)
        self._checking = threading.Lock()  # hbt-core's MonitoringService is not thread-safe
        self._stop = threading.Event()
        self._schedule: threading.Thread | None = None

    @property
    def served_model(self) -> Any:
        return self.service.model

    def serve(self, model: Any) -> None:
        """The serving model was replaced (a deploy, a hot swap): watch the new one."""
        self.service.model = model

    @property
    def flagged(self) -> bool:
        """The latch; one that cannot be read counts as set."""
        if self._unsaved_alarm:
            return True
        try:
            return self.latch.read()
        except StateStoreError:
            log.exception("the drift latch cannot be read; counting it as set")
            return True

    def check_now(self) -> Alert | None:
        """One sampling round, in the calling thread; an alarm latches ``flagged``."""
        with self._checking:
            alert = asyncio.run(self.service.check_once())
        if alert is not None:
            self._unsaved_alarm = True
        if self._unsaved_alarm:
            self.latch.set(True, f"drift alarm: {alert.kind if alert else 'earlier check'}")
            self._unsaved_alarm = False
        return alert

    async def check(self) -> Alert | None:
        """:meth:`check_now` without blocking the event loop."""
        return await asyncio.to_thread(self.check_now)

    def start(self) -> None:
        """Check every ``interval_s`` seconds in a background thread (idempotent)."""
        if self._schedule is not None:
            return
        self._stop.clear()
        self._schedule = threading.Thread(
            target=self._run_schedule, name="drift-watch", daemon=True
        )
        self._schedule.start()

    def stop(self) -> None:
        """End the schedule; a check in progress finishes first."""
        self._stop.set()
        if self._schedule is not None:
            self._schedule.join()
            self._schedule = None

    def close(self) -> None:
        """Stop the schedule and close the latch's store."""
        self.stop()
        self.latch.close()

    def _run_schedule(self) -> None:
        while not self._stop.wait(self.settings.interval_s):
            try:
                self.check_now()
            except Exception:  # a failed check must not end the schedule; it is logged and counted
                self.failures += 1
                log.exception("scheduled drift check failed")

    def acknowledge(self) -> None:
        """An operator re-baselined the model; clear the latch (for every process sharing it)."""
        self.latch.set(False, "acknowledged")
        self._unsaved_alarm = False

    def status(self) -> dict[str, Any]:
        return {
            "flagged": self.flagged,
            "checks": self.service.checks,
            "failed_checks": self.failures,
            "scheduled": self._schedule is not None,
            "alerts": [a.kind for a in self.service.alerts],
            "reference_root": self.reference.root.hex(),
            "probe_threshold": self.calibration.probe_threshold,
        }
