"""Production monitoring: one-minute guard windows on an injectable clock, sequential quality test.

Each window replays `queries_per_window` queries of measured evidence (optionally with an injected
fault) and checks four guards. Quality uses a one-sided CUSUM of the standardised shortfall of the
window's mean ΔnDCG@10 (candidate − T0) below the release reference's 95 % lower bound (the
reference is a sample, so its own error is allowed for); its limit h is calibrated by
Monte Carlo over bootstrap windows of the measured differences so that a healthy day of windows
(1440) raises a false alarm with probability ≤ 2.5 % (half of the 5 % daily budget), which keeps
repeated looks from inflating false rollbacks. Calibration drift is measured on a sliding window of
the last `calibration_windows` windows against the reference AECE at that same sample size (AECE is
biased upwards by noise, so both sides must carry the same bias), minus an allowance for the
reference sample's own noise; the reported `aece_drift` is the excess beyond that allowance.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from t1_deploy._io import write_json
from t1_deploy._validate import check_int, check_number
from t1_deploy.contract import CandidateEvidence, T1ReleaseContract
from t1_deploy.errors import ConfigError, InvalidInputError
from t1_deploy.stats import _aece

log = logging.getLogger(__name__)

SCENARIOS = (
    "healthy",
    "quality-regression",
    "latency-spike",
    "ranking-collapse",
    "calibration-drift",
)
SEVERITIES = ("OK", "WARNING", "CRITICAL", "EMERGENCY")


@dataclass(frozen=True)
class MonitoringConfig:
    window_seconds: float = 60.0
    queries_per_window: int = 500
    warning_margin: float = 0.10
    quality_shift: float = 0.01  # the ΔnDCG drop (1 pp) the CUSUM is tuned to detect
    false_alarm_rate: float = 0.025  # quality trigger, per horizon: half the 5 % day budget
    horizon_windows: int = 1440  # one day of one-minute windows
    quality_persistence: int = 3
    latency_p95_max_ms: float = 120.0
    latency_persistence: int = 5
    jaccard_min: float = 0.75
    aece_drift_max: float = 0.02
    calibration_windows: int = 30
    calibration_every: int = 5  # recompute the sliding AECE every this many windows
    aece_bins: int = 10
    calibration_paths: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        check_number("MonitoringConfig.window_seconds", self.window_seconds, low=1e-3)
        check_int(
            "MonitoringConfig.queries_per_window", self.queries_per_window, low=20, high=10**6
        )
        check_number("MonitoringConfig.warning_margin", self.warning_margin, low=0, high=1)
        check_number("MonitoringConfig.quality_shift", self.quality_shift, low=1e-6, high=1)
        check_number("MonitoringConfig.false_alarm_rate", self.false_alarm_rate, low=1e-4, high=0.5)
        check_int("MonitoringConfig.horizon_windows", self.horizon_windows, low=10, high=10**6)
        check_int("MonitoringConfig.quality_persistence", self.quality_persistence, low=1, high=100)
        check_number("MonitoringConfig.latency_p95_max_ms", self.latency_p95_max_ms, low=0)
        check_int(
            "MonitoringConfig.latency_persistence", self.latency_persistence, low=1, high=1000
        )
        check_number("MonitoringConfig.jaccard_min", self.jaccard_min, low=0, high=1)
        check_number("MonitoringConfig.aece_drift_max", self.aece_drift_max, low=0, high=1)
        check_int(
            "MonitoringConfig.calibration_windows", self.calibration_windows, low=1, high=10**4
        )
        check_int("MonitoringConfig.calibration_every", self.calibration_every, low=1, high=10**4)
        check_int("MonitoringConfig.calibration_paths", self.calibration_paths, low=100, high=10**6)


class ManualClock:
    """A clock the caller advances: tests and the demo run a day of windows instantly."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ReplayTraffic:
    """Windows of real measured queries, resampled, with an optional injected fault.

    Faults: quality-regression loses the relevant document (nDCG 0) on a random share of queries
    sized to cost `quality_shift` of mean nDCG; latency-spike adds 150 ms to 10 % of queries;
    ranking-collapse replaces half of the HNSW rankings by unrelated ones (Jaccard 0);
    calibration-drift inflates router confidences (c → c^0.3).
    """

    def __init__(
        self,
        evidence: CandidateEvidence,
        scenario: str = "healthy",
        *,
        fault_start_window: int = 0,
        quality_shift: float = 0.01,
        seed: int = 0,
    ) -> None:
        if scenario not in SCENARIOS:
            raise InvalidInputError(f"scenario must be one of {SCENARIOS}, got {scenario!r}")
        self.evidence = evidence
        self.scenario = scenario
        self.fault_start_window = check_int("fault_start_window", fault_start_window, low=0)
        mean_cand = float(evidence.ndcg_candidate.mean())
        self._loss_share = min(1.0, quality_shift / mean_cand) if mean_cand > 0 else 1.0
        self.rng = np.random.default_rng(seed)
        self.window = 0

    def next_window(self, size: int) -> dict[str, npt.NDArray[Any]]:
        ev, rng = self.evidence, self.rng
        rows = rng.integers(0, len(ev.ndcg_candidate), size=size)
        batch = {
            "ndcg_candidate": ev.ndcg_candidate[rows].copy(),
            "ndcg_baseline": ev.ndcg_baseline[rows].copy(),
            "latency_ms": ev.require("latency_candidate_ms")[rows].copy(),
            "jaccard": ev.require("jaccard")[rows].copy(),
            "confidence": np.clip(ev.require("router_confidence")[rows], 0.0, 1.0),
            "benefit": ev.require("realised_benefit")[rows].copy(),
        }
        faulty = self.window >= self.fault_start_window
        if faulty and self.scenario == "quality-regression":
            batch["ndcg_candidate"][rng.random(size) < self._loss_share] = 0.0
        elif faulty and self.scenario == "latency-spike":
            batch["latency_ms"][rng.random(size) < 0.10] += 150.0
        elif faulty and self.scenario == "ranking-collapse":
            batch["jaccard"][rng.random(size) < 0.5] = 0.0
        elif faulty and self.scenario == "calibration-drift":
            batch["confidence"] = batch["confidence"] ** 0.3
        self.window += 1
        return batch


@dataclass
class WindowMetrics:
    window: int
    timestamp: float
    n_queries: int
    delta_ndcg: float
    delta_ndcg_lcb: float
    cusum: float
    p95_latency_ms: float
    jaccard_at_10: float
    aece_drift: float | None


@dataclass
class GuardStatus:
    name: str
    value: float | None
    limit: float
    state: str  # OK, WARNING, BREACHED, WARMING_UP


@dataclass
class Alert:
    window: int
    timestamp: float
    severity: str
    guards: list[GuardStatus]
    rollback_triggers: list[str]
    snapshot_path: str | None = None


@dataclass
class MonitoringRun:
    scenario: str
    windows: int
    alerts_by_severity: dict[str, int]
    rollback: dict[str, Any] | None
    history: list[WindowMetrics] = field(default_factory=list)


def calibrate_cusum_limit(
    k: float,
    *,
    persistence: int,
    horizon: int,
    rate: float,
    paths: int,
    seed: int,
    increments: npt.NDArray[np.float64] | None = None,
) -> float:
    """Smallest h with P(CUSUM > h for `persistence` windows within `horizon`) ≤ `rate`.

    Increments are drawn from `increments` (a bank of healthy standardised window statistics,
    e.g. bootstrap window means of the measured differences) or, when None, standard normal.
    """
    rng = np.random.default_rng(seed)
    peak = np.zeros(paths)
    s = np.zeros(paths)
    run_min = [np.zeros(paths) for _ in range(persistence)]
    for _ in range(horizon):
        z = (
            rng.standard_normal(paths)
            if increments is None
            else increments[rng.integers(0, len(increments), paths)]
        )
        s = np.maximum(0.0, s + z - k)
        run_min = [s, *run_min[:-1]]
        peak = np.maximum(peak, np.minimum.reduce(run_min))
    return float(np.quantile(peak, 1.0 - rate))


def healthy_window_bank(
    differences: npt.NDArray[np.float64], window: int, size: int, seed: int
) -> npt.NDArray[np.float64]:
    """`size` bootstrap means of `window` per-query differences: the healthy window statistic.

    Per-query ΔnDCG is mostly exactly 0, so a window mean is far from normal; calibrating on
    resampled windows keeps the false-alarm rate honest where a normal approximation does not.
    """
    rng = np.random.default_rng(seed)
    means = np.empty(size)
    chunk = max(1, 2_000_000 // window)
    for start in range(0, size, chunk):
        stop = min(size, start + chunk)
        means[start:stop] = rng.choice(differences, size=(stop - start, window)).mean(axis=1)
    return means


class ProductionMonitoringSystem:
    """Per-window guard validation, alerts, rollback triggers, snapshots and Prometheus metrics."""

    def __init__(
        self,
        release_contract: T1ReleaseContract,
        reference: CandidateEvidence,
        config: MonitoringConfig | None = None,
        *,
        clock: Callable[[], float] | None = None,
        registry: Any = None,
        snapshot_dir: str | Path | None = None,
    ) -> None:
        if not isinstance(release_contract, T1ReleaseContract):
            raise InvalidInputError("release_contract must be a T1ReleaseContract")
        self.contract = release_contract
        for name in ("latency_candidate_ms", "jaccard", "router_confidence", "realised_benefit"):
            reference.require(name)  # the replay draws from each of them
        self.config = config or MonitoringConfig()
        self.clock = clock or time.time
        self.snapshot_dir = Path(snapshot_dir) if snapshot_dir else None
        cfg = self.config
        self.reference_evidence = reference
        diffs = reference.ndcg_candidate - reference.ndcg_baseline
        self.reference_delta = float(diffs.mean())
        self.sigma = float(diffs.std(ddof=1)) or 1e-9
        self.se_window = self.sigma / np.sqrt(cfg.queries_per_window)
        # k = δ/2 is optimal for a shift of δ standard errors; capped at 1 so the statistic also
        # accumulates smaller shortfalls and the calibrated limit h stays away from 0.
        self.k = min(cfg.quality_shift / self.se_window / 2.0, 1.0)
        bank = healthy_window_bank(diffs, cfg.queries_per_window, 20_000, cfg.seed + 3)
        self.h = calibrate_cusum_limit(
            self.k,
            persistence=cfg.quality_persistence,
            horizon=cfg.horizon_windows,
            rate=cfg.false_alarm_rate,
            paths=cfg.calibration_paths,
            seed=cfg.seed,
            increments=(self.reference_delta - bank) / self.se_window,
        )
        # The reference mean is itself an estimate from len(diffs) queries: live traffic from the
        # same, undegraded population has a mean that differs by its sampling error. The CUSUM
        # therefore tracks shortfalls below the reference's two-sided 95 % lower bound (the
        # out-of-sample A/A fired every day when it tracked the point estimate).
        self.reference_se = self.sigma / np.sqrt(len(diffs))
        self.quality_target = self.reference_delta - 1.959964 * self.reference_se
        self.aece_reference = self._reference_aece(reference)
        self._metrics = self._register(registry)
        self.reset()

    def _reference_aece(self, ev: CandidateEvidence) -> float:
        """Reference AECE at the sliding window's size, and the allowance for its own noise.

        The reference queries are a sample too: live traffic from the same (undrifted) population
        has a different finite-sample AECE. Each replicate bootstraps the reference queries (a
        plausible population) and draws a window-sized sample from it; the reference is the mean
        and `aece_allowance` the distance from it to the replicates' 97.5th percentile (half the
        daily 5 % budget, like the quality trigger), so only drift beyond that noise counts.
        """
        cfg = self.config
        n = cfg.queries_per_window * cfg.calibration_windows
        rng = np.random.default_rng(cfg.seed + 7)
        conf = np.clip(ev.require("router_confidence"), 0.0, 1.0)
        benefit = ev.require("realised_benefit")
        values = []
        for _ in range(200):
            population = rng.integers(0, len(conf), size=len(conf))
            rows = population[rng.integers(0, len(conf), size=n)]
            values.append(_aece(conf[rows], benefit[rows], cfg.aece_bins))
        reference = float(np.mean(values))
        self.aece_allowance = float(np.quantile(values, 0.975)) - reference
        return reference

    def _register(self, registry: Any) -> dict[str, Any]:
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        return {
            "delta": Gauge("t1_window_delta_ndcg", "Window mean ΔnDCG@10 vs T0", registry=r),
            "cusum": Gauge("t1_quality_cusum", "Quality CUSUM statistic", registry=r),
            "p95": Gauge("t1_window_p95_latency_seconds", "Window p95 latency", registry=r),
            "jaccard": Gauge("t1_window_jaccard_at10_ratio", "Window mean Jaccard@10", registry=r),
            "aece": Gauge("t1_aece_drift_ratio", "Sliding AECE minus reference", registry=r),
            "alerts": Counter("t1_alerts_total", "Alerts by severity", ["severity"], registry=r),
            "rollbacks": Counter(
                "t1_rollbacks_total", "Rollbacks by trigger", ["trigger"], registry=r
            ),
            "windows": Counter("t1_windows_total", "Windows validated", registry=r),
        }

    def reset(self) -> None:
        self.window = 0
        self.cusum = 0.0
        self._quality_run = 0
        self._latency_run = 0
        self._calib: deque[tuple[npt.NDArray[Any], npt.NDArray[Any]]] = deque(
            maxlen=self.config.calibration_windows
        )
        self._last_drift: float | None = None
        self.rolled_back: dict[str, Any] | None = None
        self.alerts: list[Alert] = []
        self.history: list[WindowMetrics] = []
        self.started_at: float | None = None

    def start_monitoring(self) -> dict[str, Any]:
        self.reset()
        self.started_at = self.clock()
        return {"started_at": self.started_at, "cusum_limit": self.h, "cusum_k": self.k}

    def collect_realtime_metrics(self, batch: dict[str, npt.NDArray[Any]]) -> WindowMetrics:
        """Reduce one window of per-query observations to the guard metrics."""
        needed = {
            "ndcg_candidate",
            "ndcg_baseline",
            "latency_ms",
            "jaccard",
            "confidence",
            "benefit",
        }
        if not isinstance(batch, dict) or not needed <= set(batch):
            raise InvalidInputError(f"batch must be a dict with keys {sorted(needed)}")
        arrays = {k: np.asarray(batch[k], dtype=np.float64) for k in needed}
        n = len(arrays["ndcg_candidate"])
        if n < 2 or any(len(a) != n for a in arrays.values()):
            raise InvalidInputError("batch arrays must share one length of at least 2")
        if not all(np.all(np.isfinite(a)) for a in arrays.values()):
            raise InvalidInputError("batch holds NaN or infinite values")
        diffs = arrays["ndcg_candidate"] - arrays["ndcg_baseline"]
        mean = float(diffs.mean())
        se = self.sigma / np.sqrt(n)
        z = (self.quality_target - mean) / se
        self.cusum = max(0.0, self.cusum + z - self.k)
        self._calib.append((np.clip(arrays["confidence"], 0, 1), arrays["benefit"]))
        full = len(self._calib) == self.config.calibration_windows
        if full and (self._last_drift is None or self.window % self.config.calibration_every == 0):
            conf = np.concatenate([c for c, _ in self._calib])
            ben = np.concatenate([b for _, b in self._calib])
            self._last_drift = (
                _aece(conf, ben, self.config.aece_bins) - self.aece_reference - self.aece_allowance
            )
        drift = self._last_drift
        metrics = WindowMetrics(
            window=self.window,
            timestamp=self.clock(),
            n_queries=n,
            delta_ndcg=mean,
            delta_ndcg_lcb=mean - 1.6448536 * se,
            cusum=self.cusum,
            p95_latency_ms=float(np.percentile(arrays["latency_ms"], 95)),
            jaccard_at_10=float(arrays["jaccard"].mean()),
            aece_drift=drift,
        )
        self.window += 1
        self.history.append(metrics)
        m = self._metrics
        m["delta"].set(mean)
        m["cusum"].set(self.cusum)
        m["p95"].set(metrics.p95_latency_ms / 1000.0)
        m["jaccard"].set(metrics.jaccard_at_10)
        if drift is not None:
            m["aece"].set(drift)
        m["windows"].inc()
        return metrics

    def validate_guards_realtime(self, metrics: WindowMetrics) -> list[GuardStatus]:
        cfg = self.config
        margin = cfg.warning_margin
        statuses = [
            _upper("quality_cusum", metrics.cusum, self.h, margin),
            _upper("p95_latency_ms", metrics.p95_latency_ms, cfg.latency_p95_max_ms, margin),
            _lower("jaccard_at_10", metrics.jaccard_at_10, cfg.jaccard_min, margin),
        ]
        if metrics.aece_drift is None:
            statuses.append(GuardStatus("aece_drift", None, cfg.aece_drift_max, "WARMING_UP"))
        else:
            statuses.append(_upper("aece_drift", metrics.aece_drift, cfg.aece_drift_max, margin))
        return statuses

    def rollback_triggers(self, statuses: list[GuardStatus]) -> list[str]:
        """Persistence rules: quality 3 windows, latency 5 windows, stability/calibration 1."""
        state = {s.name: s.state for s in statuses}
        self._quality_run = self._quality_run + 1 if state["quality_cusum"] == "BREACHED" else 0
        self._latency_run = self._latency_run + 1 if state["p95_latency_ms"] == "BREACHED" else 0
        fired = []
        if self._quality_run >= self.config.quality_persistence:
            fired.append("quality_regression")
        if self._latency_run >= self.config.latency_persistence:
            fired.append("latency_breach")
        if state["jaccard_at_10"] == "BREACHED":
            fired.append("stability_loss")
        if state["aece_drift"] == "BREACHED":
            fired.append("calibration_drift")
        return fired

    def generate_alert(
        self, statuses: list[GuardStatus], metrics: WindowMetrics | None = None
    ) -> Alert | None:
        """WARNING: a guard within the margin; CRITICAL: one breached; EMERGENCY: two or more."""
        breached = sum(s.state == "BREACHED" for s in statuses)
        warned = any(s.state == "WARNING" for s in statuses)
        severity = (
            "EMERGENCY"
            if breached >= 2
            else "CRITICAL"
            if breached == 1
            else "WARNING"
            if warned
            else "OK"
        )
        triggers = self.rollback_triggers(statuses)
        if severity == "OK" and not triggers:
            return None
        now = self.clock()
        alert = Alert(self.window - 1, now, severity, statuses, triggers)
        if severity != "OK":
            self._metrics["alerts"].labels(severity=severity).inc()
        if self.snapshot_dir is not None and severity in ("CRITICAL", "EMERGENCY"):
            path = self.snapshot_dir / f"snapshot_window{alert.window:05d}.json"
            write_json(path, self.diagnostic_snapshot(alert, metrics))
            alert.snapshot_path = str(path)
        if triggers and self.rolled_back is None:
            self.rolled_back = {"window": alert.window, "timestamp": now, "triggers": triggers}
            for t in triggers:
                self._metrics["rollbacks"].labels(trigger=t).inc()
            log.warning("rollback triggered", extra={"triggers": triggers, "window": alert.window})
        self.alerts.append(alert)
        return alert

    def diagnostic_snapshot(self, alert: Alert, metrics: WindowMetrics | None) -> dict[str, Any]:
        return {
            "alert": asdict(alert),
            "window_metrics": asdict(metrics) if metrics else None,
            "recent_windows": [asdict(w) for w in self.history[-10:]],
            "cusum": {
                "value": self.cusum,
                "limit": self.h,
                "k": self.k,
                "reference_delta": self.reference_delta,
                "quality_target": self.quality_target,
                "sigma": self.sigma,
            },
            "aece_reference": self.aece_reference,
        }

    def run(
        self,
        traffic: ReplayTraffic,
        n_windows: int,
        *,
        clock: ManualClock | None = None,
        stop_on_rollback: bool = True,
    ) -> MonitoringRun:
        """Validate `n_windows` windows from `traffic`, advancing `clock` by one window each."""
        n_windows = check_int("n_windows", n_windows, low=1, high=10**7)
        self.start_monitoring()
        counts = dict.fromkeys(SEVERITIES, 0)
        for _ in range(n_windows):
            if clock is not None:
                clock.advance(self.config.window_seconds)
            metrics = self.collect_realtime_metrics(
                traffic.next_window(self.config.queries_per_window)
            )
            alert = self.generate_alert(self.validate_guards_realtime(metrics), metrics)
            counts[alert.severity if alert else "OK"] += 1
            if self.rolled_back is not None and stop_on_rollback:
                break
        return MonitoringRun(traffic.scenario, self.window, counts, self.rolled_back, self.history)

    def export_config(self, path: str | Path) -> Path:
        cfg = asdict(self.config)
        payload = {
            "schema_version": "1.0",
            "kind": "production_monitoring_config",
            "config": cfg,
            "calibration": {
                "cusum_limit": self.h,
                "cusum_k": self.k,
                "reference_delta_ndcg": self.reference_delta,
                "quality_target_delta_ndcg": self.quality_target,
                "sigma_delta_ndcg": self.sigma,
                "aece_reference": self.aece_reference,
                "aece_allowance": self.aece_allowance,
            },
            "severity_rules": {
                "WARNING": f"a guard within {cfg['warning_margin']:.0%} of its limit",
                "CRITICAL": "one guard breached",
                "EMERGENCY": "two or more guards breached",
            },
            "rollback_triggers": {
                "quality_regression": f"CUSUM > limit for {cfg['quality_persistence']} windows",
                "latency_breach": f"p95 > {cfg['latency_p95_max_ms']} ms "
                f"for {cfg['latency_persistence']} windows",
                "stability_loss": f"Jaccard@10 < {cfg['jaccard_min']}",
                "calibration_drift": "AECE drift beyond the reference-noise allowance > "
                f"{cfg['aece_drift_max']}",
            },
        }
        json.dumps(payload, allow_nan=False)
        return write_json(Path(path), payload)


def _upper(name: str, value: float, limit: float, margin: float) -> GuardStatus:
    near = value >= limit * (1 - margin) if limit > 0 else value > limit - margin * abs(limit)
    state = "BREACHED" if value > limit else "WARNING" if near else "OK"
    return GuardStatus(name, float(value), float(limit), state)


def _lower(name: str, value: float, limit: float, margin: float) -> GuardStatus:
    state = "BREACHED" if value < limit else "WARNING" if value <= limit * (1 + margin) else "OK"
    return GuardStatus(name, float(value), float(limit), state)


def simulate_false_rollbacks(
    system: ProductionMonitoringSystem,
    held_out: CandidateEvidence,
    *,
    days: int,
    seed: int = 0,
) -> dict[str, Any]:
    """Out-of-sample A/A: healthy traffic replayed from `held_out` — queries the monitor's limits
    were not calibrated on — for `days` days of windows; the share of days with a rollback."""
    days = check_int("days", days, low=1, high=10_000)
    if not isinstance(held_out, CandidateEvidence):
        raise InvalidInputError("held_out must be CandidateEvidence disjoint from the reference")
    if held_out is system.reference_evidence:
        raise InvalidInputError(
            "held_out is the calibration evidence itself: A/A would be in-sample"
        )
    rollbacks = 0
    triggers: dict[str, int] = {}
    for d in range(days):
        traffic = ReplayTraffic(held_out, "healthy", seed=seed + d)
        run = system.run(traffic, system.config.horizon_windows)
        if run.rollback:
            rollbacks += 1
            for t in run.rollback["triggers"]:
                triggers[t] = triggers.get(t, 0) + 1
    return {
        "days": days,
        "false_rollback_rate": rollbacks / days,
        "triggers": triggers,
        "held_out_queries": len(held_out.ndcg_candidate),
    }


def detection_delay(
    system: ProductionMonitoringSystem, scenario: str, *, runs: int, max_windows: int, seed: int = 0
) -> dict[str, Any]:
    """Windows from fault onset (window 0) to the first rollback, over `runs` replays."""
    if scenario == "healthy":
        raise ConfigError("detection_delay needs a fault scenario, not 'healthy'")
    delays: list[int] = []
    missed = 0
    for r in range(runs):
        traffic = ReplayTraffic(
            system.reference_evidence,
            scenario,
            quality_shift=system.config.quality_shift,
            seed=seed + r,
        )
        run = system.run(traffic, max_windows)
        if run.rollback:
            delays.append(int(run.rollback["window"]) + 1)
        else:
            missed += 1
    return {
        "scenario": scenario,
        "runs": runs,
        "detected": runs - missed,
        "median_windows": float(np.median(delays)) if delays else None,
        "p90_windows": float(np.percentile(delays, 90)) if delays else None,
    }
