"""ProductionDeploymentPackage: build the reference system, run every component, write artifacts.

`run(out_dir)` is what `t1-deploy run` calls. Everything that does not depend on wall-clock time
(data set, split, rankings, nDCG, the τ and gain routers) is deterministic for a seed; measured
latencies — and the spend head, θ* and harvest choice that depend on them — vary run to run.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from t1_deploy._io import write_json
from t1_deploy._validate import check_int
from t1_deploy.confounding import (
    ConfoundingResolutionConfig,
    ConfoundingResolver,
    log_router_decisions,
)
from t1_deploy.contract import (
    BaselineMetrics,
    CandidateEvidence,
    ProductionGuards,
    T1ReleaseContract,
    queries_for_power,
    simulate_operating_characteristics,
)
from t1_deploy.errors import ConfigError, InvalidInputError, NotFittedError
from t1_deploy.gating import GatingOptimizationConfig, TwoStageGatingOptimizer, routed_outcome
from t1_deploy.harvest import LatencyHarvestConfig, LatencyHarvestOptimizer
from t1_deploy.monitoring import MonitoringConfig, ProductionMonitoringSystem
from t1_deploy.reference.dataset import CodeSearchDataset, build_dataset
from t1_deploy.reference.system import QueryLog, ReferenceSearchSystem, SearchConfig
from t1_deploy.router import Int8RouterPolicy, MonotoneRouterDistiller, RouterDistillationConfig
from t1_deploy.stats import paired_bca_interval
from t1_deploy.sustainment import SustainmentContext, SustainmentLoopSystem

log = logging.getLogger(__name__)

SEED_ARTIFACTS = (
    "router_distilled_int8.json",
    "theta_star_production.json",
    "latency_harvest_config.json",
    "production_monitoring_config.json",
    "T1_release_contract.md",
    "conformal_coverage_report.csv",
    "counterfactual_audit_fixed.csv",
    "regression_gallery.md",
)


@dataclass(frozen=True)
class DeploymentConfig:
    """All sizes in one place; `profile("quick")` is the small demo/test profile."""

    seed: int = 0
    max_pairs: int = 6000
    search: SearchConfig = field(default_factory=SearchConfig)
    distillation: RouterDistillationConfig = field(default_factory=RouterDistillationConfig)
    gating: GatingOptimizationConfig = field(default_factory=GatingOptimizationConfig)
    harvest: LatencyHarvestConfig = field(default_factory=LatencyHarvestConfig)
    confounding: ConfoundingResolutionConfig = field(default_factory=ConfoundingResolutionConfig)
    guards: ProductionGuards = field(default_factory=ProductionGuards)
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    contract_simulations: int = 200
    no_regret_resamples: int = 2000

    def __post_init__(self) -> None:
        check_int("DeploymentConfig.seed", self.seed, low=0, high=2**31 - 1)
        check_int("DeploymentConfig.max_pairs", self.max_pairs, low=300, high=200_000)
        check_int(
            "DeploymentConfig.contract_simulations", self.contract_simulations, low=10, high=10**5
        )

    @classmethod
    def profile(cls, name: str, seed: int = 0) -> DeploymentConfig:
        if name == "default":
            return cls(seed=seed, search=SearchConfig(seed=seed))
        if name == "quick":
            return cls(
                seed=seed,
                max_pairs=2500,
                search=SearchConfig(latency_repeats=1, svd_dim=128, seed=seed),
                harvest=LatencyHarvestConfig(
                    n_queries=120,
                    repeats=1,
                    wide_ef_values=(1, 4, 32),
                    wide_topk_values=(10, 160),
                    n_resamples=500,
                ),
                confounding=ConfoundingResolutionConfig(
                    n_permutations=300, power_simulations=20, power_permutations=100
                ),
                guards=ProductionGuards(n_resamples=1000),
                monitoring=MonitoringConfig(calibration_paths=500),
                contract_simulations=40,
                no_regret_resamples=1000,
            )
        raise ConfigError(f"profile must be 'default' or 'quick', got {name!r}")


@dataclass
class DeploymentLogs:
    train: QueryLog
    validation: QueryLog
    test: QueryLog
    holdback: QueryLog


class ProductionDeploymentPackage:
    """Orchestrates the seven components on measured data from the reference system."""

    def __init__(
        self,
        config: DeploymentConfig | None = None,
        *,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config or DeploymentConfig()
        self._progress = progress or (lambda _step: None)
        self.dataset: CodeSearchDataset | None = None
        self.system: ReferenceSearchSystem | None = None
        self.logs: DeploymentLogs | None = None
        self.distiller: MonotoneRouterDistiller | None = None
        self.gating: TwoStageGatingOptimizer | None = None
        self.contract: T1ReleaseContract | None = None
        self.evidence: CandidateEvidence | None = None
        self.results: dict[str, Any] = {}

    # ------------------------------------------------------------------ data
    def prepare(self, query_progress: Callable[[int], None] | None = None) -> DeploymentLogs:
        cfg = self.config
        self.dataset = build_dataset(seed=cfg.seed, max_pairs=cfg.max_pairs)
        self._progress("dataset")
        self.system = ReferenceSearchSystem(self.dataset, cfg.search)
        self._progress("index")
        logs = {
            name: self.system.run_queries(self.dataset.splits[name], progress=query_progress)
            for name in ("train", "validation", "test", "holdback")
        }
        self.logs = DeploymentLogs(**logs)
        self._progress("queries")
        return self.logs

    # ------------------------------------------------------------------ components
    def create_complete_deployment_package(
        self,
        training_data: QueryLog,
        validation_data: QueryLog,
        *,
        test_data: QueryLog | None = None,
        holdback_data: QueryLog | None = None,
        out_dir: str | Path | None = None,
    ) -> dict[str, Any]:
        """Distil → gate → no-regret → audit → harvest → contract → monitoring → sustainment."""
        for name, value in (("training_data", training_data), ("validation_data", validation_data)):
            if not isinstance(value, QueryLog):
                raise InvalidInputError(f"{name} must be a QueryLog, got {type(value).__name__}")
        cfg = self.config
        validation_data, test_data, holdback_data, evaluation_source = self._evaluation_logs(
            validation_data, test_data, holdback_data
        )
        n_pairs = len(self._ensure_system().dataset.pairs)
        for name, log_ in (
            ("training_data", training_data),
            ("validation_data", validation_data),
            ("test_data", test_data),
            ("holdback_data", holdback_data),
        ):
            if len(log_) and int(log_.pair_ids.max()) >= n_pairs:
                raise InvalidInputError(
                    f"{name} refers to pair id {int(log_.pair_ids.max())}, but the reference "
                    f"data set of this configuration has {n_pairs} pairs (different seed/size?)"
                )
        out = Path(out_dir) if out_dir is not None else None
        distiller = MonotoneRouterDistiller(cfg.distillation)
        report = distiller.fit(
            training_data.features,
            (training_data.gain > 0).astype(float),
            training_data.latency_t1_ms,
            training_data.gain,
        )
        self.distiller = distiller
        self._progress("distillation")
        router_ms = self._router_ms(distiller, validation_data)
        gating = TwoStageGatingOptimizer(cfg.gating)
        gate = gating.optimize_gating_parameters(
            validation_data, distiller.predict(validation_data.features), router_ms
        )
        distiller.routing_threshold = gate.theta_star
        self.gating = gating
        self._progress("gating")
        no_regret = self._no_regret(distiller, test_data, gate.theta_star, gate.delta, router_ms)
        self._progress("no-regret")
        resolver = ConfoundingResolver(cfg.confounding)
        obs = log_router_decisions(
            validation_data.features,
            distiller.predict(validation_data.features),
            validation_data.ndcg_t0,
            validation_data.ndcg_t1,
            validation_data.features[:, 2],
            validation_data.features[:, 1],
            validation_data.domain,
            theta=gate.theta_star,
            seed=cfg.seed,
        )
        audit = resolver.resolve_confounding(obs)
        self._progress("confounding")
        harvest = LatencyHarvestOptimizer(cfg.harvest)
        harvest.optimize_latency_harvest(self._ensure_system(), validation_data.pair_ids.tolist())
        self._progress("latency-harvest")
        contract, evidence = self._contract(
            distiller, validation_data, test_data, gate.theta_star, gate.delta, router_ms
        )
        verdict = contract.validate_release_contract(evidence)
        diffs = evidence.ndcg_candidate - evidence.ndcg_baseline
        n_power = queries_for_power(diffs, 0.01, 0.8, cfg.guards.confidence)
        oc_test = simulate_operating_characteristics(
            diffs,
            n_queries=len(diffs),
            n_simulations=cfg.contract_simulations,
            n_resamples=999,
            seed=cfg.seed,
        )
        oc_power = simulate_operating_characteristics(
            diffs,
            n_queries=n_power,
            n_simulations=cfg.contract_simulations,
            n_resamples=999,
            seed=cfg.seed + 1,
        )
        self.contract, self.evidence = contract, evidence
        self._progress("release-contract")
        monitor = ProductionMonitoringSystem(contract, evidence, cfg.monitoring)
        self._progress("monitoring")
        sustainment = SustainmentLoopSystem(
            SustainmentContext(
                dataset=self._require_dataset(),
                calibration_log=validation_data,
                refresh_log=holdback_data,
                evaluation_log=test_data,
                distiller=distiller,
                gating=TwoStageGatingOptimizer(cfg.gating),
                resolver=ConfoundingResolver(cfg.confounding),
                router_ms=router_ms,
                seed=cfg.seed,
            )
        )
        cycle = sustainment.execute_sustainment_cycle(out)
        self._progress("sustainment")
        ndcg_routed = float(evidence.ndcg_candidate.mean())
        self.results = {
            "evaluation_source": evaluation_source,
            "deployment_ready": verdict.authorised,
            "verdict": verdict.verdict,
            "ndcg_at_10": {
                "t0": float(test_data.ndcg_t0.mean()),
                "t1": float(test_data.ndcg_t1.mean()),
                "t1_lite": float(test_data.ndcg_lite.mean()),
                "distilled_routing": ndcg_routed,
                "hard_nl_t0": float(test_data.ndcg_t0[test_data.hard_nl].mean()),
                "hard_nl_distilled_routing": float(
                    evidence.ndcg_candidate[test_data.hard_nl].mean()
                ),
            },
            "n_queries": {
                "train": len(training_data),
                "validation": len(validation_data),
                "test": len(test_data),
                "holdback": len(holdback_data),
            },
            "latency_ms": {
                "t0_p50": float(np.median(test_data.latency_t0_ms)),
                "t1_p50": float(np.median(test_data.latency_t1_ms)),
                "routed_p95": float(np.percentile(evidence.require("latency_candidate_ms"), 95)),
                "t0_p95": float(np.percentile(test_data.latency_t0_ms, 95)),
                "router_single_row": router_ms,
            },
            "distillation": asdict(report),
            "no_regret": no_regret,
            "gating": {k: v for k, v in asdict(gate).items() if k != "roc"},
            "confounding": asdict(audit),
            "harvest": None
            if harvest.result is None
            else {
                "chosen": None
                if harvest.result.chosen is None
                else asdict(harvest.result.points[harvest.result.chosen]),
                "pareto_front_size": len(harvest.result.pareto_front),
                "n_configs": len(harvest.result.points),
            },
            "contract": contract.to_dict(),
            "contract_operating_characteristics": {
                "at_test_size": asdict(oc_test),
                "at_power_size": asdict(oc_power),
                "queries_for_80pct_power_at_1pp": n_power,
            },
            "monitoring": {
                "cusum_limit": monitor.h,
                "cusum_k": monitor.k,
                "aece_reference": monitor.aece_reference,
            },
            "sustainment": {
                "refreshed_queries": cycle.refreshed_queries,
                "coverage": [
                    asdict(c) | {"within_target": c.within_target} for c in cycle.coverage
                ],
                "theta_star_refreshed": cycle.gating.theta_star,
                "audit_passed": cycle.audit.passed,
            },
        }
        if out is not None:
            provenance = {
                "seed": cfg.seed,
                "dataset_fingerprint": self.dataset.fingerprint if self.dataset else None,
                "python": self.dataset.python_version if self.dataset else None,
            }
            distiller.export_production_config(out / "router_distilled_int8.json", provenance)
            gating.export_gating_config(out / "theta_star_production.json", out / "roc_router.png")
            if harvest.result is not None:
                harvest.export_latency_harvest_config(
                    out / "latency_harvest_config.json", out / "pareto_latency_harvest.png"
                )
            monitor.export_config(out / "production_monitoring_config.json")
            contract.generate_release_contract_document(out / "T1_release_contract.md")
            resolver.export_audit_csv(out / "counterfactual_audit_fixed.csv")
            write_json(out / "deployment_summary.json", finite_json(self.results))
        self._monitor = monitor
        return self.results

    def build_release(self, logs: DeploymentLogs) -> tuple[T1ReleaseContract, CandidateEvidence]:
        """Only what monitoring needs: distil the router, gate it, collect the contract evidence."""
        cfg = self.config
        distiller = MonotoneRouterDistiller(cfg.distillation)
        distiller.fit(
            logs.train.features,
            (logs.train.gain > 0).astype(float),
            logs.train.latency_t1_ms,
            logs.train.gain,
        )
        router_ms = self._router_ms(distiller, logs.validation)
        gate = TwoStageGatingOptimizer(cfg.gating).optimize_gating_parameters(
            logs.validation, distiller.predict(logs.validation.features), router_ms
        )
        contract, evidence = self._contract(
            distiller, logs.validation, logs.test, gate.theta_star, gate.delta, router_ms
        )
        contract.validate_release_contract(evidence)
        self.distiller, self.contract, self.evidence = distiller, contract, evidence
        return contract, evidence

    def start_production_monitoring(self, **kwargs: Any) -> ProductionMonitoringSystem:
        if self.contract is None or self.evidence is None:
            raise NotFittedError("create_complete_deployment_package must run first")
        monitor = ProductionMonitoringSystem(
            self.contract, self.evidence, self.config.monitoring, **kwargs
        )
        monitor.start_monitoring()
        return monitor

    def run(
        self, out_dir: str | Path, query_progress: Callable[[int], None] | None = None
    ) -> dict[str, Any]:
        """prepare() + create_complete_deployment_package() + schema validation, single-threaded
        BLAS (faster on a shared 2-core machine, and reproducible)."""
        import scipy.linalg  # noqa: F401  (load every BLAS before limiting their threads)
        import sklearn.linear_model  # noqa: F401
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            return self._run(out_dir, query_progress)

    def _run(
        self, out_dir: str | Path, query_progress: Callable[[int], None] | None
    ) -> dict[str, Any]:
        logs = self.prepare(query_progress)
        results = self.create_complete_deployment_package(
            logs.train,
            logs.validation,
            test_data=logs.test,
            holdback_data=logs.holdback,
            out_dir=out_dir,
        )
        from t1_deploy.schemas import validate_artifacts

        results["artifact_validation"] = validate_artifacts(Path(out_dir))
        write_json(Path(out_dir) / "deployment_summary.json", finite_json(results))
        return results

    # ------------------------------------------------------------------ helpers
    def _evaluation_logs(
        self, validation: QueryLog, test: QueryLog | None, holdback: QueryLog | None
    ) -> tuple[QueryLog, QueryLog, QueryLog, str]:
        """Test and holdback logs: as passed, else prepare()'s splits, else carved from
        `validation` by a seeded permutation (40 % validation / 40 % test / 20 % holdback)."""
        if test is not None and holdback is not None:
            return validation, test, holdback, "passed"
        if self.logs is not None and test is None and holdback is None:
            return validation, self.logs.test, self.logs.holdback, "prepare() splits"
        if len(validation) < 50:
            raise InvalidInputError(
                f"validation_data has {len(validation)} queries; carving test and holdback "
                "logs out of it needs at least 50"
            )
        order = np.random.default_rng(self.config.seed + 5).permutation(len(validation))
        cut1, cut2 = int(0.4 * len(order)), int(0.8 * len(order))
        parts = [validation.subset(np.sort(order[a:b])) for a, b in ((0, cut1), (cut1, cut2))]
        carved_holdback = validation.subset(np.sort(order[cut2:]))
        return (
            parts[0],
            test if test is not None else parts[1],
            holdback if holdback is not None else carved_holdback,
            "carved from validation_data (disjoint parts)",
        )

    def _ensure_system(self) -> ReferenceSearchSystem:
        """The reference system the logs came from; rebuilt (deterministically, from the config's
        seed) when logs were made elsewhere and passed in without prepare()."""
        if self.system is None:
            self.dataset = build_dataset(seed=self.config.seed, max_pairs=self.config.max_pairs)
            self.system = ReferenceSearchSystem(self.dataset, self.config.search)
        return self.system

    def _require_dataset(self) -> CodeSearchDataset:
        return self._ensure_system().dataset

    @staticmethod
    def _router_ms(distiller: MonotoneRouterDistiller, log_: QueryLog) -> float:
        """Median measured time of one pure-Python INT8 router evaluation (ms)."""
        policy = Int8RouterPolicy(distiller.to_payload())
        rows = [tuple(r) for r in log_.features[:500].tolist()]
        times = []
        for row in rows:
            start = time.perf_counter()
            policy.score(row)
            times.append((time.perf_counter() - start) * 1000.0)
        return float(statistics.median(times))

    def _no_regret(
        self,
        distiller: MonotoneRouterDistiller,
        test: QueryLog,
        theta: float,
        delta: float,
        router_ms: float,
    ) -> dict[str, Any]:
        distilled, _, s_d = routed_outcome(
            test, distiller.predict(test.features), theta, delta, router_ms
        )
        teacher, _, s_t = routed_outcome(
            test, distiller.teacher_predict(test.features), theta, delta, router_ms
        )
        ci = paired_bca_interval(
            distilled - teacher, n_resamples=self.config.no_regret_resamples, seed=self.config.seed
        )
        threshold_pp = self.config.distillation.no_regret_threshold
        return {
            "n_queries": len(test),
            "mean_pp": ci.mean * 100,
            "lcb_pp": ci.low * 100,
            "ucb_pp": ci.high * 100,
            "method": ci.method,
            "decisions_differ": int(np.sum(s_d != s_t)),
            "threshold_pp": -threshold_pp,
            "passed": ci.low * 100 >= -threshold_pp,
        }

    def _contract(
        self,
        distiller: MonotoneRouterDistiller,
        validation: QueryLog,
        test: QueryLog,
        theta: float,
        delta: float,
        router_ms: float,
    ) -> tuple[T1ReleaseContract, CandidateEvidence]:
        tau_val = np.clip(distiller.predict(validation.features), 0, 1)
        from t1_deploy.stats import adaptive_ece

        reference_aece = adaptive_ece(
            tau_val, (validation.gain > 0).astype(float), self.config.guards.aece_bins
        )
        tau = distiller.predict(test.features)
        ndcg, latency, stage = routed_outcome(test, tau, theta, delta, router_ms)
        baseline = BaselineMetrics(
            ndcg=float(test.ndcg_t0.mean()),
            p95_ms=float(np.percentile(test.latency_t0_ms, 95)),
            aece_reference=reference_aece,
            n_queries=len(test),
            reference_confidence=tau_val,
            reference_benefit=(validation.gain > 0).astype(float),
        )
        evidence = CandidateEvidence(
            ndcg_candidate=ndcg,
            ndcg_baseline=test.ndcg_t0,
            latency_candidate_ms=latency,
            latency_baseline_ms=test.latency_t0_ms,
            hard_nl=test.hard_nl,
            jaccard=test.jaccard_t1_exact,
            router_confidence=np.clip(tau, 0, 1),
            realised_benefit=(test.gain > 0).astype(float),
            routed=stage == 2,
        )
        return T1ReleaseContract(baseline, self.config.guards), evidence


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.bool_,)):
        return bool(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def finite_json(value: Any) -> Any:
    """A JSON-safe copy: numpy scalars unwrapped, non-finite floats → None (JSON has no inf)."""
    plain = json.loads(json.dumps(value, default=_jsonable), parse_constant=lambda _c: None)
    return plain
