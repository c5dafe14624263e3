"""``ProductionHBT``: one facade over fingerprinting, verification, updates, distribution,
monitoring, audit and edge export, with the method names of the original design."""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import CollectorRegistry

from hbt_core import distributed
from hbt_core.auditlog import AuditLog
from hbt_core.challenges import Probe, generate_probes
from hbt_core.distributed import VerificationStrategy
from hbt_core.edge import export_edge
from hbt_core.errors import InvalidInputError, KeyConfigurationError, check_int
from hbt_core.hdc import Accumulator, Packed, similarity
from hbt_core.incremental import (
    AdaptiveWeighting,
    ExponentialDecay,
    Reservoir,
    SlidingWindow,
    Updater,
    UpdateStrategy,
)
from hbt_core.models import LogitModel, TextModel, model_identity
from hbt_core.monitor import (
    Alert,
    AlertSink,
    LogSink,
    MemorySink,
    MonitorConfig,
    MonitoringService,
    WebhookSink,
)
from hbt_core.performance import CacheManager, PerformanceOptimizer
from hbt_core.server import HTTPModel
from hbt_core.signature import EncoderConfig, Signature, build_signature, encode_probe, probe_vector
from hbt_core.verification import Calibration, VerificationResult, verify

logger = logging.getLogger("hbt_core.production")
Model = LogitModel | TextModel

DEFAULT_CONFIG: dict[str, Any] = {
    "dim": 16_384,
    "n_probes": 64,
    "n_samples": 3,
    "mode": "logit",
    "probe_seed": 0,
    "cache_size": 10_000,
    "cache_ttl": 3600.0,
    "window_size": 1000,
    "decay_factor": 0.95,
    "adaptive_gain": 4,
    "reservoir_size": 1000,
    "reservoir_seed": 0,
    "calibration_runs": 3,
    "alpha": 0.01,
    "beta": 0.01,
    "sprt_p1": 0.5,
}


@dataclass
class SignatureUpdate:
    """Result of an incremental update: the new bundle and the updater holding its state."""

    strategy: UpdateStrategy
    bundled: Packed
    counts: npt.NDArray[Any]
    total: float
    n_responses: int
    updater: Updater = field(repr=False)


@dataclass(frozen=True)
class DistributedResult:
    strategy: VerificationStrategy
    counts: npt.NDArray[np.int64]
    total: int
    bundle_similarity: float | None
    verification: VerificationResult | None
    details: dict[str, Any]


class ProductionHBT:
    """Production facade. ``signing_key`` (from :mod:`hbt_core.keys`) enables edge export and
    audit checkpoints; ``audit_log`` receives one record per verification decision."""

    def __init__(
        self,
        config: dict[str, Any] | None = None,
        registry: CollectorRegistry | None = None,
        signing_key: Ed25519PrivateKey | None = None,
        audit_log: AuditLog | None = None,
    ) -> None:
        unknown = set(config or {}) - set(DEFAULT_CONFIG)
        if unknown:
            raise InvalidInputError(f"config has unknown keys {sorted(unknown)}")
        self.config = {**DEFAULT_CONFIG, **(config or {})}
        self.encoder = EncoderConfig(
            mode=self.config["mode"], dim=self.config["dim"], n_samples=self.config["n_samples"]
        )
        self.registry = registry
        self.signing_key = signing_key
        self.audit_log = audit_log
        self.cache = CacheManager(self.config["cache_size"], self.config["cache_ttl"], registry)
        self.optimizer = PerformanceOptimizer(registry)
        self.probes = generate_probes(
            check_int("n_probes", self.config["n_probes"], low=1), self.config["probe_seed"]
        )

    # ------------------------------------------------------------------ fingerprints
    def build_signature(
        self, model: Model, run_seed: int = 0, probes: Sequence[Probe] | None = None
    ) -> Signature:
        """Fingerprint a model; cached per (model identity, probes, encoder config, run seed).

        The identity is a digest of the weights where the model offers one; otherwise the
        object's id, so two distinct models never share a cache entry.
        """
        ps = list(probes or self.probes)
        key = (model_identity(model), [p.prompt for p in ps], str(self.encoder), run_seed)
        with self.optimizer.profile("build_signature"):
            return self.cache.get_or_compute(
                lambda: build_signature(model, ps, self.encoder, run_seed), *key
            )

    def calibrate(self, model: Model, reference: Signature, runs: int | None = None) -> Calibration:
        """Same-model null: fingerprint the reference model under other run seeds."""
        n = runs or self.config["calibration_runs"]
        nulls = [
            build_signature(
                model, self._probes_of(reference), self.encoder, reference.run_seed + 1 + i
            )
            for i in range(n)
        ]
        return Calibration.from_null(reference, nulls, alpha=self.config["alpha"])

    def _probes_of(self, signature: Signature) -> list[Probe]:
        by_id = {p.probe_id: p for p in self.probes}
        try:
            return [by_id[pid] for pid in signature.probe_ids]
        except KeyError as exc:
            raise InvalidInputError(f"signature probe {exc} is not in this challenge set") from None

    def verify_model(
        self,
        reference: Signature,
        model: Model,
        calibration: Calibration,
        run_seed: int | None = None,
    ) -> VerificationResult:
        """Fingerprint ``model`` under a fresh run seed and verify it; log the decision."""
        seed = reference.run_seed + 10_000 if run_seed is None else run_seed
        candidate = build_signature(model, self._probes_of(reference), self.encoder, seed)
        result = verify(
            reference, candidate, calibration, p1=self.config["sprt_p1"], beta=self.config["beta"]
        )
        if self.audit_log is not None:
            self.audit_log.append(
                {
                    "event": "verification",
                    "reference_root": reference.root.hex(),
                    "candidate_root": candidate.root.hex(),
                    "model": getattr(model, "name", ""),
                    "similarity": round(result.similarity, 6),
                    "same_model": result.same_model,
                    "sequential_decision": result.sequential.decision,
                    "queries": result.sequential.queries,
                }
            )
        return result

    def encode_responses(self, model: Model, probes: Sequence[Probe], run_seed: int) -> Packed:
        """Probe-bound response hypervectors, ready for :meth:`incremental_signature_update`."""
        rows = [
            np.bitwise_xor(
                encode_probe(model, p, self.encoder, run_seed)[0],
                probe_vector(p.probe_id, self.encoder.dim),
            )
            for p in probes
        ]
        return np.stack(rows)

    # ------------------------------------------------------------------ incremental
    def incremental_signature_update(
        self,
        existing_hbt: Signature | SignatureUpdate,
        new_responses: Packed,
        update_strategy: UpdateStrategy = UpdateStrategy.EXPONENTIAL_DECAY,
    ) -> SignatureUpdate:
        """Fold new response hypervectors into a signature without mutating either input."""
        if not isinstance(update_strategy, UpdateStrategy):
            raise InvalidInputError(
                f"update_strategy must be an UpdateStrategy, got {update_strategy!r}"
            )
        responses = np.array(new_responses, dtype=np.uint64, copy=True)
        if isinstance(existing_hbt, SignatureUpdate):
            if existing_hbt.strategy is not update_strategy:
                raise InvalidInputError("cannot switch strategy on an existing update state")
            updater = _clone(existing_hbt.updater)
        elif isinstance(existing_hbt, Signature):
            updater = self._new_updater(existing_hbt, update_strategy)
        else:
            raise InvalidInputError(
                f"existing_hbt must be a Signature, got {type(existing_hbt).__name__}"
            )
        with self.optimizer.profile("incremental_update"):
            updater.update(responses)
        acc = updater.acc
        return SignatureUpdate(
            update_strategy,
            acc.threshold(),
            acc.counts.copy(),
            float(acc.total),
            int(responses.shape[0]) if responses.ndim > 1 else 1,
            updater,
        )

    def _new_updater(self, sig: Signature, strategy: UpdateStrategy) -> Updater:
        c = self.config
        if strategy is UpdateStrategy.EXPONENTIAL_DECAY:
            return ExponentialDecay(
                sig.dim, c["decay_factor"], prior=Accumulator.from_counts(sig.counts, sig.total)
            )
        if strategy is UpdateStrategy.SLIDING_WINDOW:
            return SlidingWindow(sig.dim, c["window_size"])
        if strategy is UpdateStrategy.ADAPTIVE:
            return AdaptiveWeighting(sig.bundled(), c["adaptive_gain"])
        return Reservoir(sig.dim, c["reservoir_size"], c["reservoir_seed"])

    # ------------------------------------------------------------------ distributed
    async def distributed_verification(
        self,
        model_shards: Sequence[Model],
        verification_strategy: VerificationStrategy = VerificationStrategy.MAP_REDUCE,
        reference: Signature | None = None,
        calibration: Calibration | None = None,
        executor: Executor | None = None,
        run_seed: int = 0,
    ) -> DistributedResult:
        """Fingerprint across workers (``executor``; default a 2-thread pool) and compare."""
        if not model_shards:
            raise InvalidInputError("model_shards must name at least one model")
        if not isinstance(verification_strategy, VerificationStrategy):
            raise InvalidInputError(
                f"verification_strategy must be a VerificationStrategy, "
                f"got {verification_strategy!r}"
            )
        probes = self._probes_of(reference) if reference is not None else self.probes
        own = executor is None
        pool = executor or ThreadPoolExecutor(max_workers=2)
        try:
            return await asyncio.to_thread(
                self._distributed,
                list(model_shards),
                verification_strategy,
                probes,
                reference,
                calibration,
                pool,
                run_seed,
            )
        finally:
            if own:
                pool.shutdown(wait=True)

    def _distributed(
        self,
        models: list[Model],
        strategy: VerificationStrategy,
        probes: list[Probe],
        reference: Signature | None,
        calibration: Calibration | None,
        pool: Executor,
        run_seed: int,
    ) -> DistributedResult:
        enc = self.encoder
        details: dict[str, Any] = {"shards": len(models)}
        signature: Signature | None = None
        if strategy is VerificationStrategy.MAP_REDUCE:
            signature = distributed.map_reduce(pool, models, probes, enc, run_seed)
            counts, total = signature.counts, signature.total
        elif strategy is VerificationStrategy.HIERARCHICAL:
            signature = distributed.hierarchical(pool, models, probes, enc, run_seed)
            counts, total = signature.counts, signature.total
        elif strategy is VerificationStrategy.FEDERATED:
            fed = distributed.federated(pool, models, probes, enc, run_seed)
            counts, total = fed.counts, fed.total
            details["party_roots"] = [r.hex() for r in fed.party_roots]
        else:
            gos = distributed.gossip(pool, models, probes, enc, run_seed)
            counts, total = gos.counts, gos.total
            details |= {"rounds": gos.rounds, "round_bound": gos.round_bound}
        bundle_sim = None
        verification = None
        if reference is not None:
            bundle_sim = similarity(
                Accumulator.from_counts(counts, total).threshold(), reference.bundled()
            )
            if signature is not None and calibration is not None:
                verification = verify(reference, signature, calibration)
        return DistributedResult(strategy, counts, total, bundle_sim, verification, details)

    # ------------------------------------------------------------------ monitoring
    async def continuous_model_monitoring(
        self,
        model_endpoint: str | Model,
        monitoring_config: dict[str, Any],
        reference: Signature,
        calibration: Calibration,
        sinks: Sequence[AlertSink] | None = None,
        remediation: Callable[[Alert], Awaitable[None] | None] | None = None,
    ) -> list[Alert]:
        """Run the monitoring service until ``max_checks``; returns the alerts raised.

        ``alert_channels`` in the config may name ``"log"``, ``"memory"`` or webhook URLs.
        """
        cfg = MonitorConfig.from_mapping(dict(monitoring_config))
        chosen: list[AlertSink] = list(sinks or [])
        for ch in monitoring_config.get("alert_channels", []):
            if ch == "log":
                chosen.append(LogSink())
            elif ch == "memory":
                chosen.append(MemorySink())
            elif isinstance(ch, str) and ch.startswith(("http://", "https://")):
                chosen.append(WebhookSink(ch))
            else:
                raise InvalidInputError(
                    f"alert_channels entry {ch!r} is not supported (use 'log', 'memory' or a URL)"
                )
        model = HTTPModel(model_endpoint) if isinstance(model_endpoint, str) else model_endpoint
        service = MonitoringService(
            model,
            reference,
            self._probes_of(reference),
            calibration,
            cfg,
            chosen,
            self.registry,
            remediation,
        )
        self.last_monitor = service
        return await service.run()

    # ------------------------------------------------------------------ edge
    def export_for_edge_deployment(
        self, signature: Signature, optimization_level: str = "balanced", compression: str = "zlib"
    ) -> bytes:
        if self.signing_key is None:
            raise KeyConfigurationError("edge export needs a signing key (see hbt_core.keys)")
        with self.optimizer.profile("edge_export"):
            return export_edge(signature, self.signing_key, optimization_level, compression)


def _clone(updater: Updater) -> Updater:
    """Deep copy, so an update never mutates a previous state."""
    return copy.deepcopy(updater)
