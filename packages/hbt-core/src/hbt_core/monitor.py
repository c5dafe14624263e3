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
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
from prometheus_client import CollectorRegistry

from cert.runtime.metrics import MetricsFactory
from hbt_core.challenges import Probe
from hbt_core.drift import BernoulliCUSUM, calibrate_cusum, classify_drift, variance_stable
from hbt_core.errors import EndpointError, InvalidInputError, check_finite_number, check_int
from hbt_core.hdc import similarity
from hbt_core.incremental import ExponentialDecay
from hbt_core.logs import correlation_id, log_event
from hbt_core.models import LogitModel, TextModel
from hbt_core.server import public_url
from hbt_core.signature import Signature, encode_probe, probe_vector
from hbt_core.verification import Calibration

logger = logging.getLogger("hbt_core.monitor")


@dataclass(frozen=True)
class MonitorConfig:
    """Monitoring knobs (names follow the seed's ``monitoring_config``); validated on creation.

    Endpoint failures are retried after ``retry_backoff`` seconds, doubling up to
    ``retry_backoff_max``; ``failure_alert_after`` consecutive failures raise one
    ``endpoint_unavailable`` alert per outage. ``history_limit`` bounds the per-probe history.
    """

    sample_rate: float = 0.1
    check_interval: float = 60.0
    drift_sensitivity: float = 0.05  # false-alarm probability within ``horizon`` checks' probes
    disagreement_alt: float = 0.5
    horizon: int = 1000
    decay: float = 0.95
    max_checks: int | None = None
    retry_backoff: float = 1.0
    retry_backoff_max: float = 300.0
    failure_alert_after: int = 3
    history_limit: int = 10_000

    def __post_init__(self) -> None:
        p = "monitoring_config."
        check_finite_number(p + "sample_rate", self.sample_rate, low=1e-6, high=1.0)
        check_finite_number(p + "check_interval", self.check_interval, low=0.0)
        check_finite_number(p + "drift_sensitivity", self.drift_sensitivity, low=1e-4, high=0.5)
        check_finite_number(p + "disagreement_alt", self.disagreement_alt, low=1e-3, high=0.999)
        check_int(p + "horizon", self.horizon, low=1, high=10_000_000)
        check_finite_number(p + "decay", self.decay, low=1e-6, high=1.0)
        if self.max_checks is not None:
            check_int(p + "max_checks", self.max_checks, low=1)
        check_finite_number(p + "retry_backoff", self.retry_backoff, low=0.0)
        check_finite_number(p + "retry_backoff_max", self.retry_backoff_max, low=self.retry_backoff)
        check_int(p + "failure_alert_after", self.failure_alert_after, low=1)
        check_int(p + "history_limit", self.history_limit, low=16, high=100_000_000)

    def retry_delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` consecutive endpoint failures (exponential)."""
        n = check_int("failures", failures, low=1)
        return float(min(self.retry_backoff * 2.0 ** min(n - 1, 60), self.retry_backoff_max))

    @classmethod
    def from_mapping(cls, raw: dict[str, Any]) -> MonitorConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(raw) - known - {"alert_channels"}
        if unknown:
            raise InvalidInputError(f"monitoring_config has unknown keys {sorted(unknown)}")
        return cls(**{k: v for k, v in raw.items() if k in known})


@dataclass(frozen=True)
class Alert:
    """A drift alarm, or (``kind="endpoint_unavailable"``) a persistent endpoint failure, for
    which ``mean_similarity`` is None (nothing was measured) and ``error`` says what failed."""

    kind: str
    check: int
    observations: int
    statistic: float
    mean_similarity: float | None
    served_by: str
    variance_ratio: float = 1.0
    variance_stable: bool = True
    timestamp: float = field(default_factory=time.time)
    error: str = ""


class AlertSink(Protocol):
    async def emit(self, alert: Alert) -> None: ...


class MemorySink:
    """Keeps the latest ``max_alerts`` alerts in a list (tests, dashboards in-process)."""

    def __init__(self, max_alerts: int = 1000) -> None:
        self.max_alerts = check_int("max_alerts", max_alerts, low=1)
        self.alerts: list[Alert] = []

    async def emit(self, alert: Alert) -> None:
        self.alerts.append(alert)
        del self.alerts[: -self.max_alerts]


class LogSink:
    """Writes each alert as a structured warning record."""

    async def emit(self, alert: Alert) -> None:
        log_event(logger, "WARNING", "monitor alert", **asdict(alert))


class WebhookSink:
    """POSTs each alert as JSON to a URL (in a worker thread, so the loop never blocks)."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            shown = public_url(url) if isinstance(url, str) else type(url).__name__
            raise InvalidInputError(f"webhook url must be http(s), got {shown!r}")
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
            log_event(logger, "ERROR", "webhook delivery failed", error=str(exc))


class _Metrics:
    """Idempotent: a second monitor on the same registry shares these collectors."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        f = MetricsFactory(registry, enabled=registry is not None)
        self.checks = f.counter("hbt_monitor_checks_total", "Monitoring checks run")
        self.alerts = f.counter("hbt_monitor_alerts_total", "Drift alerts", ["kind"])
        self.endpoint_errors = f.counter(
            "hbt_monitor_endpoint_errors_total", "Checks that failed on the model endpoint"
        )
        self.hook_errors = f.counter(
            "hbt_monitor_hook_errors_total", "Alert sinks or remediation hooks that raised"
        )
        self.similarity = f.gauge(
            "hbt_monitor_probe_similarity_ratio", "Mean probe similarity in the last check"
        )
        self.cusum = f.gauge("hbt_monitor_cusum_statistic", "CUSUM statistic")
        self.bundle = f.gauge(
            "hbt_monitor_bundle_similarity_ratio",
            "Similarity of the decayed running bundle to the reference bundle",
        )
        self.duration = f.histogram("hbt_monitor_check_duration_seconds", "Time per check")


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
        self.metrics = _Metrics(registry)
        q0 = max(1e-3, 1 - calibration.p0)
        q1 = max(config.disagreement_alt, 2 * q0)
        h = calibrate_cusum(q0, q1, config.horizon, config.drift_sensitivity, n_sim=1000)
        self.cusum = BernoulliCUSUM(q0, q1, h)
        self.decayed = ExponentialDecay(reference.dim, config.decay)
        # (similarity, domain, variance) of the last ``history_limit`` probe observations
        self.history: deque[tuple[float, int, float]] = deque(maxlen=config.history_limit)
        self.observations = 0  # all observations ever (the history keeps the latest)
        self.alerts: deque[Alert] = deque(maxlen=1000)
        self.checks = 0
        self.consecutive_failures = 0
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
        """One sampling round; returns the alert it raised, if any.

        All sampled probes are queried before any state changes, so a check that fails on the
        endpoint (:class:`EndpointError`, ``OSError``) leaves the detector untouched.
        """
        self.checks += 1
        token = correlation_id.set(f"monitor-check-{self.checks}")
        start = time.perf_counter()
        try:
            k = max(1, math.ceil(self.config.sample_rate * len(self.probes)))
            chosen = sorted(
                int(c) for c in self._rng.choice(len(self.probes), size=k, replace=False)
            )
            run_seed = self._seed + self.checks
            answers = [
                await asyncio.to_thread(
                    encode_probe, self.model, self.probes[i], self.reference.config, run_seed
                )
                for i in chosen
            ]
            sims, alarm = [], False
            for i, (leaf, var) in zip(chosen, answers, strict=True):
                probe = self.probes[i]
                sim = similarity(leaf, self.reference.leaves[i])
                sims.append(sim)
                self.history.append((sim, self._domains[probe.domain], var))
                self.observations += 1
                self.decayed.update(
                    np.bitwise_xor(leaf, probe_vector(probe.probe_id, self.reference.dim))
                )
                alarm |= self.cusum.update(sim < self.calibration.probe_threshold)
            mean_sim = float(np.mean(sims))
            self.metrics.checks.inc()
            self.metrics.similarity.set(mean_sim)
            self.metrics.cusum.set(self.cusum.statistic)
            self.metrics.bundle.set(self.bundle_similarity())
            self.metrics.duration.observe(time.perf_counter() - start)
            if not alarm:
                return None
            alert = self._alert(mean_sim)
            await self._raise(alert)
            return alert
        finally:
            correlation_id.reset(token)

    async def _raise(self, alert: Alert) -> None:
        """Record ``alert``, deliver it to every sink and the remediation hook; a hook that
        raises is logged and counted, never allowed to stop the monitor."""
        self.alerts.append(alert)
        self.metrics.alerts.labels(kind=alert.kind).inc()
        hooks: list[Callable[[Alert], Awaitable[None] | None]] = [s.emit for s in self.sinks]
        if self.remediation is not None:
            hooks.append(self.remediation)
        for hook in hooks:
            try:
                result = hook(alert)
                if asyncio.iscoroutine(result):
                    await result
            except Exception as exc:
                self.metrics.hook_errors.inc()
                log_event(logger, "ERROR", "alert hook failed", hook=repr(hook), error=repr(exc))

    def _alert(self, mean_sim: float) -> Alert:
        hist = np.asarray(self.history)
        dropped = self.observations - len(hist)  # observations the bounded history forgot
        change = max(0, min(self.cusum.last_reset - dropped, len(hist) - 8))
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
        log_event(logger, "WARNING", "drift detected", kind=kind, check=self.checks)
        return Alert(
            kind,
            self.checks,
            self.observations,
            self.cusum.threshold,
            mean_sim,
            served,
            ratio,
            stable,
        )

    async def run(self) -> list[Alert]:
        """Check until :meth:`stop` or ``max_checks``; return the (latest) alerts raised.

        An endpoint failure does not end the run: the check is retried after an exponential
        backoff, and ``failure_alert_after`` failures in a row raise an
        ``endpoint_unavailable`` alert (once per outage). Other exceptions are bugs and
        propagate.
        """
        while not self._stop.is_set():
            delay = self.config.check_interval
            try:
                await self.check_once()
                self.consecutive_failures = 0
            except (EndpointError, OSError) as exc:
                delay = await self._endpoint_failed(exc)
            if self.config.max_checks is not None and self.checks >= self.config.max_checks:
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=delay)
        return list(self.alerts)

    async def _endpoint_failed(self, exc: Exception) -> float:
        """Count, log and (when persistent) alert an endpoint failure; return the retry delay."""
        self.consecutive_failures += 1
        n = self.consecutive_failures
        self.metrics.endpoint_errors.inc()
        log_event(logger, "WARNING", "endpoint check failed", failures=n, error=str(exc))
        if n == self.config.failure_alert_after:
            served = str(getattr(self.model, "last_served_by", ""))
            await self._raise(
                Alert(
                    "endpoint_unavailable",
                    self.checks,
                    self.observations,
                    float(n),
                    None,
                    served,
                    error=str(exc),
                )
            )
        return self.config.retry_delay(n)
