"""TrustMonitor: evaluate with metrics, one JSON log line per call, health and a circuit breaker.

Metrics go to the ``registry`` passed in, or to a private :class:`CollectorRegistry` so two
monitors (or a monitor and a test) never collide on the global default registry.

Health is judged on the error rate over a sliding window (``monitor.window_seconds``, at most
``monitor.window_max_events`` events, at least ``monitor.min_samples`` before it counts). Above
``monitor.circuit_breaker_error_rate`` the breaker opens: every decision becomes REVIEW until
the rate in the window falls back, and health reports ``unhealthy`` with the breaker open.

Only the service's own failures count there (a calibrator that raises or answers NaN, a bug).
A caller's invalid signals (:class:`TrustInputError`) are refused, counted in
``trust_gate_input_rejections_total`` and logged, but never enter the window: one client
sending NaN must not switch every other client to REVIEW.

The window and the breaker belong to one process, on purpose (docs/packages/resontinex-trust.md,
"Several processes"): they measure this process's own parts (its calibrator, its code), a failure
there opens this process's breaker within ``min_samples`` evaluations, and keeping the window in a
shared database would put a write on every evaluation's path. Health says so (``scope``,
``pid``), so an operator behind a load balancer knows which process answered.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from resontinex.trust.breakglass import OverrideRecord, break_glass_override
from resontinex.trust.composite_trust_gate import CompositeTrustGate
from resontinex.trust.config import TrustConfig, load_config, validate_and_normalize_config
from resontinex.trust.errors import TrustConfigError, TrustInputError
from resontinex.trust.logs import log_event
from resontinex.trust.protocols import ScoreCalibrator
from resontinex.trust.signals import TIERS, Decision, InputVector

__all__ = ["TrustMetrics", "TrustMonitor"]

_LATENCY_BUCKETS = (1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 1e-2)
_SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))


class TrustMetrics:
    """The gate's Prometheus metrics on one registry, with label children bound up front."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.evaluation_seconds = Histogram(
            "trust_gate_evaluation_seconds",
            "Wall time of one gate evaluation.",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.trust_score = Histogram(
            "trust_gate_trust_score",
            "Trust score the tier was judged on.",
            buckets=_SCORE_BUCKETS,
            registry=registry,
        )
        decisions = Counter(
            "trust_gate_decisions_total", "Decisions by kind.", ["decision"], registry=registry
        )
        tiers = Counter(
            "trust_gate_tier_total", "Evaluations by risk tier.", ["tier"], registry=registry
        )
        self.decisions = {d: decisions.labels(decision=d.value) for d in Decision}
        self.tiers = {t: tiers.labels(tier=t.value) for t in TIERS}
        self.entropy_flags = Counter(
            "trust_gate_entropy_flags_total",
            "Evaluations whose confidence band reached the entropy threshold.",
            registry=registry,
        )
        self.floor_violations = Counter(
            "trust_gate_floor_violations_total",
            "Evaluations whose trust score was below the trust floor.",
            registry=registry,
        )
        self.evaluation_errors = Counter(
            "trust_gate_evaluation_errors_total",
            "Evaluations that failed inside the service (these drive health and the breaker).",
            registry=registry,
        )
        self.input_rejections = Counter(
            "trust_gate_input_rejections_total",
            "Evaluations refused because the caller's signals were invalid.",
            registry=registry,
        )
        self.config_validation_failures = Counter(
            "trust_gate_config_validation_failures_total",
            "Configs that failed validation.",
            registry=registry,
        )
        self.break_glass = Counter(
            "trust_gate_break_glass_total",
            "Break-glass attempts by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.circuit_breaker_open = Gauge(
            "trust_gate_circuit_breaker_open",
            "1 while the circuit breaker forces REVIEW.",
            registry=registry,
        )


class _ErrorWindow:
    """Error events in a time window, capped in size; O(1) amortised per event."""

    def __init__(self, seconds: float, max_events: int, clock: Callable[[], float]) -> None:
        self.seconds = seconds
        self.events: collections.deque[tuple[float, bool]] = collections.deque(maxlen=max_events)
        self.errors = 0
        self.clock = clock

    def _prune(self, now: float) -> None:
        cutoff = now - self.seconds
        events = self.events
        while events and events[0][0] < cutoff:
            if events.popleft()[1]:
                self.errors -= 1

    def add(self, is_error: bool) -> None:
        now = self.clock()
        self._prune(now)
        if len(self.events) == self.events.maxlen and self.events[0][1]:
            self.errors -= 1  # the deque is about to drop its oldest event
        self.events.append((now, is_error))
        self.errors += is_error

    def snapshot(self) -> tuple[int, int]:
        self._prune(self.clock())
        return len(self.events), self.errors


class TrustMonitor:
    """Evaluate signals through the gate with metrics, logs, health and a circuit breaker."""

    def __init__(
        self,
        config_path: str | os.PathLike[str] | None = None,
        config: TrustConfig | Mapping[str, Any] | None = None,
        registry: CollectorRegistry | None = None,
        logger: logging.Logger | None = None,
        *,
        calibrator: ScoreCalibrator | None = None,
        environment: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = TrustMetrics(self.registry)
        self.logger = (
            logger if logger is not None else logging.getLogger("resontinex.trust.monitor")
        )
        if config_path is not None and config is not None:
            raise TrustConfigError("config", config_path, "pass config_path or config, not both")
        self.config = self._validated(config_path, config, environment)
        self.calibrator = calibrator
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._evaluations = 0
        self._errors = 0
        self._rejected = 0
        self._window = self._new_window()
        self._breaker_open = False

    def _new_window(self) -> _ErrorWindow:
        s = self.config.monitor
        return _ErrorWindow(s.window_seconds, s.window_max_events, self._clock)

    def _validated(
        self,
        config_path: str | os.PathLike[str] | None,
        config: TrustConfig | Mapping[str, Any] | None,
        environment: str | None,
    ) -> TrustConfig:
        try:
            if config is not None:
                return validate_and_normalize_config(config, environment=environment)
            return load_config(config_path, environment=environment)
        except TrustConfigError as exc:
            self.metrics.config_validation_failures.inc()
            log_event(self.logger, logging.ERROR, "trust_config_invalid", error=str(exc))
            raise

    def reload_config(
        self,
        config_path: str | os.PathLike[str] | None = None,
        config: TrustConfig | Mapping[str, Any] | None = None,
        *,
        environment: str | None = None,
    ) -> TrustConfig:
        """Swap in a new config; a config that fails validation is counted and the old one kept."""
        new = self._validated(config_path, config, environment)
        with self._lock:
            self.config = new
            self._window = self._new_window()
            self._breaker_open = False
        self.metrics.circuit_breaker_open.set(0)
        log_event(self.logger, logging.INFO, "trust_config_loaded", config_hash=new.config_hash)
        return new

    def _record(self, is_error: bool) -> None:
        with self._lock:
            self._evaluations += 1
            self._errors += is_error
            self._window.add(is_error)
            self._update_breaker()

    def _update_breaker(self) -> None:
        events, errors = self._window.snapshot()
        settings = self.config.monitor
        is_open = (
            events >= settings.min_samples and errors / events > settings.circuit_breaker_error_rate
        )
        if is_open != self._breaker_open:
            self._breaker_open = is_open
            self.metrics.circuit_breaker_open.set(int(is_open))
            log_event(
                self.logger,
                logging.CRITICAL if is_open else logging.WARNING,
                "trust_circuit_breaker_opened" if is_open else "trust_circuit_breaker_closed",
                window_events=events,
                window_errors=errors,
            )

    @property
    def circuit_open(self) -> bool:
        with self._lock:
            self._update_breaker()
            return self._breaker_open

    def evaluate(
        self,
        alignment_score: float,
        epistemic_risk: float,
        confidence_band: float,
        *,
        context: Mapping[str, Any] | None = None,
    ) -> CompositeTrustGate:
        """Evaluate one set of signals; bad input is counted, logged and re-raised.

        ``context`` (e.g. an operation id) is added to the log line, with secrets redacted.
        """
        started = time.perf_counter()
        try:
            inputs = InputVector(alignment_score, epistemic_risk, confidence_band)
        except TrustInputError as exc:  # the caller's error: counted apart, not in the window
            self.metrics.input_rejections.inc()
            with self._lock:
                self._rejected += 1
            self._log_error(logging.WARNING, "trust_evaluation_rejected", exc, context)
            raise
        try:
            gate = CompositeTrustGate(
                inputs, self.config, self.calibrator, circuit_open=self.circuit_open
            )
        except Exception as exc:  # a failing part: counted toward health and the breaker
            self.metrics.evaluation_errors.inc()
            self._record(True)
            self._log_error(logging.ERROR, "trust_evaluation_failed", exc, context)
            raise
        elapsed = time.perf_counter() - started
        m = self.metrics
        m.evaluation_seconds.observe(elapsed)
        m.trust_score.observe(gate.trust_score)
        m.decisions[gate.decision].inc()
        m.tiers[gate.risk_tier].inc()
        if gate.entropy_flag:
            m.entropy_flags.inc()
        if not gate.floor_met:
            m.floor_violations.inc()
        self._record(False)
        log_event(
            self.logger,
            logging.INFO,
            "trust_evaluation",
            inputs=dict(
                zip(("alignment_score", "epistemic_risk", "confidence_band"), inputs, strict=True)
            ),
            raw_trust_score=gate.raw_trust_score,
            trust_score=gate.trust_score,
            tier=gate.risk_tier.value,
            decision=gate.decision.value,
            rule_fired=gate.rule_fired,
            config_hash=gate.config.config_hash,
            elapsed_seconds=elapsed,
            context=dict(context or {}),
        )
        return gate

    def _log_error(
        self, level: int, event: str, exc: Exception, context: Mapping[str, Any] | None
    ) -> None:
        log_event(
            self.logger,
            level,
            event,
            error=str(exc),
            error_type=type(exc).__name__,
            context=dict(context or {}),
        )

    def break_glass_override(
        self,
        gate: CompositeTrustGate,
        override_reason: str,
        operator_id: str,
        **kwargs: Any,
    ) -> OverrideRecord:
        """:func:`break_glass_override` with this monitor's metrics counting the outcome."""
        return break_glass_override(
            gate, override_reason, operator_id, metrics=self.metrics, **kwargs
        )

    def get_health_status(self) -> dict[str, Any]:
        """A plain dict (ready for JSON / a FastAPI response): status, window, breaker, config."""
        with self._lock:
            self._update_breaker()
            events, errors = self._window.snapshot()
            settings = self.config.monitor
            rate = errors / events if events else 0.0
            enough = events >= settings.min_samples
            if self._breaker_open or (enough and rate > settings.unhealthy_error_rate):
                status = "unhealthy"
            elif enough and rate > settings.degraded_error_rate:
                status = "degraded"
            else:
                status = "healthy"
            return {
                "status": status,
                "uptime_seconds": self._clock() - self._started,
                "evaluation_count": self._evaluations,
                "error_count": self._errors,
                "rejected_count": self._rejected,
                "window": {
                    "seconds": settings.window_seconds,
                    "events": events,
                    "errors": errors,
                    "error_rate": rate,
                    "enough_samples": enough,
                },
                "circuit_breaker": {
                    "state": "open" if self._breaker_open else "closed",
                    "scope": "process",
                    "pid": os.getpid(),
                    "error_rate_threshold": settings.circuit_breaker_error_rate,
                },
                "config_hash": self.config.config_hash,
                "config_version": self.config.version,
                "environment": self.config.environment,
            }
