"""Continuous monitoring: an asyncio service that samples a model endpoint and raises drift alerts.

Every ``check_interval`` seconds it draws ``ceil(sample_rate * n_probes)`` probes, queries the
endpoint with fresh perturbations (a new run seed per check, so answers cannot be replayed),
compares each probe's leaf with the reference, feeds disagreements to a calibrated Bernoulli
CUSUM, folds the answers into an exponentially decaying signature, and on alarm classifies the
drift and emits an :class:`Alert` to every sink. Remediation is a hook the user supplies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from hbt_core.challenges import Probe
from hbt_core.drift import BernoulliCUSUM, calibrate_cusum, classify_drift, variance_stable
from hbt_core.errors import InvalidInputError, check_finite_number
from hbt_core.hdc import similarity
from hbt_core.incremental import ExponentialDecay
from hbt_core.logs import correlation_id
from hbt_core.models import LogitModel, TextModel
from hbt_core.signature import Signature, encode_probe, probe_vector
from hbt_core.verification import Calibration

logger = logging.getLogger("hbt_core.monitor")


@dataclass(frozen=True)
class MonitorConfig:
    """Monitoring knobs (names follow the seed's ``monitoring_config``)."""

    sample_rate: float = 0.1
    check_interval: float = 60.0
    drift_sensitivity: float = 0.05  # false-alarm probability within ``horizon`` checks' probes
    disagreement_alt: float = 0.5
    horizon: int = 1000
    decay: float = 0.95
    max_checks: int | None = None

    @classmethod
    def from_mapping(cls, raw: dict[str, Any]) -> MonitorConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(raw) - known - {"alert_channels"}
        if unknown:
            raise InvalidInputError(f"monitoring_config has unknown keys {sorted(unknown)}")
        cfg = cls(**{k: v for k, v in raw.items() if k in known})
        check_finite_number("monitoring_config.sample_rate", cfg.sample_rate, low=1e-6, high=1.0)
        check_finite_number("monitoring_config.check_interval", cfg.check_interval, low=0.0)
        check_finite_number(
            "monitoring_config.drift_sensitivity", cfg.drift_sensitivity, low=1e-4, high=0.5
        )
        return cfg


@dataclass(frozen=True)
class Alert:
    kind: str
    check: int
    observations: int
    statistic: float
    mean_similarity: float
    served_by: str
    variance_ratio: float = 1.0
    variance_stable: bool = True
    timestamp: float = field(default_factory=time.time)


class AlertSink(Protocol):
    async def emit(self, alert: Alert) -> None: ...


class MemorySink:
    """Keeps alerts in a list (tests, dashboards in-process)."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    async def emit(self, alert: Alert) -> None:
        self.alerts.append(alert)


class LogSink:
    """Writes each alert as a structured warning record."""

    async def emit(self, alert: Alert) -> None:
        logger.warning("drift alert", extra={"fields": asdict(alert)})


class WebhookSink:
    """POSTs each alert as JSON to a URL (in a worker thread, so the loop never blocks)."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InvalidInputError(f"webhook url must be http(s), got {url!r}")
        self.url, self.timeout = url, timeout
        self.failures = 0

    def _post(self, alert: Alert) -> None:
        req = urllib.request.Request(
            self.url,
            data=json.dumps(asdict(alert)).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            resp.read()

    async def emit(self, alert: Alert) -> None:
        try:
            await asyncio.to_thread(self._post, alert)
        except OSError as exc:
            self.failures += 1
            logger.error("webhook delivery failed", extra={"fields": {"error": str(exc)}})


class _Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.checks = Counter(
            "hbt_monitor_checks_total", "Monitoring checks run", registry=registry
        )
        self.alerts = Counter(
            "hbt_monitor_alerts_total", "Drift alerts", ["kind"], registry=registry
        )
        self.similarity = Gauge(
            "hbt_monitor_probe_similarity_ratio",
            "Mean probe similarity in the last check",
            registry=registry,
        )
        self.cusum = Gauge("hbt_monitor_cusum_statistic", "CUSUM statistic", registry=registry)
        self.bundle = Gauge(
            "hbt_monitor_bundle_similarity_ratio",
            "Similarity of the decayed running bundle to the reference bundle",
            registry=registry,
        )
        self.duration = Histogram(
            "hbt_monitor_check_duration_seconds", "Time per check", registry=registry
        )


class MonitoringService:
    """Samples ``model`` (usually an :class:`~hbt_core.server.HTTPModel`) against a reference."""

    def __init__(
        self,
        model: LogitModel | TextModel,
        reference: Signature,
        probes: Sequence[Probe],
        calibration: Calibration,
        config: MonitorConfig,
        sinks: Sequence[AlertSink] = (),
        registry: CollectorRegistry | None = None,
        remediation: Callable[[Alert], Awaitable[None] | None] | None = None,
        seed: int = 1_000,
    ) -> None:
        if [p.probe_id for p in probes] != list(reference.probe_ids):
            raise InvalidInputError("probes must be the reference signature's probes, in order")
        self.model, self.reference, self.probes = model, reference, list(probes)
        self.calibration, self.config = calibration, config
        self.sinks, self.remediation = list(sinks), remediation
        self.metrics = _Metrics(registry) if registry is not None else None
        q0 = max(1e-3, 1 - calibration.p0)
        q1 = max(config.disagreement_alt, 2 * q0)
        h = calibrate_cusum(q0, q1, config.horizon, config.drift_sensitivity, n_sim=1000)
        self.cusum = BernoulliCUSUM(q0, q1, h)
        self.decayed = ExponentialDecay(reference.dim, config.decay)
        self.history: list[tuple[float, int, float]] = []  # (similarity, domain, variance)
        self.alerts: list[Alert] = []
        self.checks = 0
        self._seed = seed
        self._rng = np.random.default_rng(seed)
        self._stop = asyncio.Event()
        self._domains = {d: i for i, d in enumerate(sorted({p.domain for p in probes}))}

    def bundle_similarity(self) -> float:
        """Similarity of the exponentially decayed running bundle to the reference bundle."""
        return similarity(self.decayed.acc.threshold(), self.reference.bundled())

    def stop(self) -> None:
        self._stop.set()

    async def check_once(self) -> Alert | None:
        """One sampling round; returns the alert it raised, if any."""
        self.checks += 1
        token = correlation_id.set(f"monitor-check-{self.checks}")
        start = time.perf_counter()
        try:
            k = max(1, math.ceil(self.config.sample_rate * len(self.probes)))
            chosen = self._rng.choice(len(self.probes), size=k, replace=False)
            run_seed = self._seed + self.checks
            sims, alarm = [], False
            for i in sorted(int(c) for c in chosen):
                probe = self.probes[i]
                leaf, var = await asyncio.to_thread(
                    encode_probe, self.model, probe, self.reference.config, run_seed
                )
                sim = similarity(leaf, self.reference.leaves[i])
                sims.append(sim)
                self.history.append((sim, self._domains[probe.domain], var))
                self.decayed.update(
                    np.bitwise_xor(leaf, probe_vector(probe.probe_id, self.reference.dim))
                )
                alarm |= self.cusum.update(sim < self.calibration.probe_threshold)
            mean_sim = float(np.mean(sims))
            if self.metrics is not None:
                self.metrics.checks.inc()
                self.metrics.similarity.set(mean_sim)
                self.metrics.cusum.set(self.cusum.statistic)
                self.metrics.bundle.set(self.bundle_similarity())
                self.metrics.duration.observe(time.perf_counter() - start)
            if not alarm:
                return None
            alert = self._alert(mean_sim)
            self.alerts.append(alert)
            for sink in self.sinks:
                await sink.emit(alert)
            if self.metrics is not None:
                self.metrics.alerts.labels(kind=alert.kind).inc()
            if self.remediation is not None:
                result = self.remediation(alert)
                if asyncio.iscoroutine(result):
                    await result
            return alert
        finally:
            correlation_id.reset(token)

    def _alert(self, mean_sim: float) -> Alert:
        hist = np.asarray(self.history)
        change = max(0, min(self.cusum.last_reset, len(hist) - 8))
        null = np.asarray(self.calibration.null_scores)
        kind = "sudden"
        if change >= 8:
            kind = classify_drift(
                hist[:, 0],
                hist[:, 1].astype(int),
                hist[:, 2],
                change,
                float(np.mean(hist[:change, 0])),
                max(float(np.std(hist[:change, 0])), float(null.std()), 1e-3),
            ).kind
        served = str(getattr(self.model, "last_served_by", ""))
        stable, ratio = variance_stable(self.reference.variances, hist[change:, 2])
        logger.warning("drift detected", extra={"fields": {"kind": kind, "check": self.checks}})
        return Alert(
            kind,
            self.checks,
            len(self.history),
            self.cusum.threshold,
            mean_sim,
            served,
            ratio,
            stable,
        )

    async def run(self) -> list[Alert]:
        """Check until :meth:`stop` or ``max_checks``; return the alerts raised."""
        while not self._stop.is_set():
            await self.check_once()
            if self.config.max_checks is not None and self.checks >= self.config.max_checks:
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.config.check_interval)
        return self.alerts
