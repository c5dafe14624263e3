"""Assemble the default, offline pipeline from embedded defaults and a state directory.

The state directory holds what must outlive the process: the locally trained model, the audit
log's Ed25519 signing key and, without a database URL, every store as a SQLite file (see
:mod:`resontinex.pipeline.state`); with ``database_url`` the stores live in PostgreSQL. The key comes from ``signing_key_path`` (or hbt-core's
``HBT_SIGNING_KEY_PATH``); only when neither names one is a key created, once, inside the state
directory, with a warning in the log, and reused by every later start. With a database URL
(replicas appending to one audit log) a key must be configured, and it must be the key the log
is already signed with (:func:`check_shared_key`): checkpoints signed by two keys would make the
shared log unverifiable.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cert.trajectory import TinyModelSpec, build_tiny_model
from fusion_ops.governance import EnergyGovernor
from fusion_ops.ledger_store import open_ledger_store
from fusion_ops.runtime_router import RuntimeRouter
from hbt_core import AuditLog, generate_key, load_private_key
from hbt_core.errors import IntegrityError
from hbt_core.keys import KEY_PATH_ENV, public_key_pem, public_key_raw
from resontinex.pipeline.backends import LocalModelBackend
from resontinex.pipeline.core import GovernedPipeline
from resontinex.pipeline.drift import DriftSettings, DriftWatch
from resontinex.pipeline.errors import PipelineConfigError
from resontinex.pipeline.signals import SignalMapping
from resontinex.pipeline.state import (
    AUDIT_FILE,
    BREAK_GLASS_FILE,
    DRIFT_LATCH_FILE,
    LEDGER_FILE,
    StateLocation,
    open_drift_latch,
    pin_signing_key,
)
from resontinex.pipeline.worker import ModelWorker
from resontinex.trust import TrustMonitor, open_audit_chain

log = logging.getLogger("resontinex.pipeline")
PUBLIC_KEY_FILE = "audit-public-key.pem"  # beside the audit log, for verifiers


@dataclass(frozen=True)
class PipelineSettings:
    """Knobs of the default pipeline; every one has a working offline default."""

    state_dir: Path
    model_dir: Path | None = None  # default: <state_dir>/model, trained on first use
    # 2048 positions: an applied micro-overlay makes prompts of about 1,100 tokens.
    model_spec: TinyModelSpec = field(default_factory=lambda: TinyModelSpec(n_positions=2048))
    signing_key_path: Path | None = None
    period_budget: float = 1_000_000.0
    trust_config_path: Path | None = None
    drift: DriftSettings | None = field(default_factory=DriftSettings)
    mapping: SignalMapping = field(default_factory=SignalMapping)
    # micro-batching of the model worker; max_batch=1 turns it off
    batch_window_s: float = 0.02
    max_batch: int = 16
    # prompt tokens of recurring prefixes (the overlays) whose keys and values are kept; 0: off
    prefix_cache_tokens: int = 32_768
    # one PostgreSQL URL for every store; None: SQLite files in state_dir
    database_url: str | None = None

    @property
    def stores(self) -> StateLocation:
        return StateLocation(self.state_dir, self.database_url)


def signing_key(settings: PipelineSettings) -> Any:
    """The audit log's signing key, from configuration or the state directory (see module doc)."""
    configured = settings.signing_key_path or os.environ.get(KEY_PATH_ENV)
    if configured:
        return load_private_key(configured)
    if settings.database_url:  # a key of this node's state directory would differ per replica
        raise PipelineConfigError(
            f"{KEY_PATH_ENV} is not set: with a database URL every replica signs the one shared "
            f"audit log, so set {KEY_PATH_ENV} to the same key file on every replica "
            "(create it once with `hbt keygen`)"
        )
    path = settings.state_dir / "audit-signing-key.pem"
    if not path.exists():
        generate_key(path)
        log.warning(
            "created a new audit signing key; configure HBT_SIGNING_KEY_PATH to use your own",
            extra={"path": str(path)},
        )
    return load_private_key(path)


def key_fingerprint(key: Any) -> str:
    """SHA-256 of the raw Ed25519 public key, hex: names a key without revealing it."""
    return hashlib.sha256(public_key_raw(key.public_key())).hexdigest()


def check_shared_key(log: AuditLog, key: Any, database_url: str) -> None:
    """Refuse a signing key other than the one the shared log is signed with: its latest
    checkpoint must verify under it (a log from before the pin existed), then its fingerprint
    must match the one pinned in the database by the first replica (one that never
    checkpointed yet)."""
    mine = key_fingerprint(key)
    latest = log.latest_checkpoint()
    if latest is not None:
        try:
            latest.verify(key.public_key())
        except IntegrityError:
            raise PipelineConfigError(
                f"the key at {KEY_PATH_ENV} (fingerprint {mine[:16]}) did not sign the shared "
                f"audit log's checkpoints in {log.location}: every replica must use the key file "
                "the log is signed with"
            ) from None
    pinned = pin_signing_key(database_url, mine)
    if pinned != mine:
        raise PipelineConfigError(
            f"the key at {KEY_PATH_ENV} (fingerprint {mine[:16]}) is not the key recorded for "
            f"the shared audit log in {log.location} (fingerprint {pinned[:16]}): every replica "
            "must use the same key file"
        )


def open_audit_log(settings: PipelineSettings) -> AuditLog:
    """The decision log, with its public key written beside it in the state directory; on a
    shared database only under the key the log is signed with."""
    key = signing_key(settings)
    public, pem = settings.state_dir / PUBLIC_KEY_FILE, public_key_pem(key.public_key())
    log = AuditLog(settings.stores.target(AUDIT_FILE), signing_key=key)
    try:
        if settings.database_url:
            check_shared_key(log, key, settings.database_url)
    except BaseException:
        log.close()
        raise
    if not public.exists() or public.read_bytes() != pem:  # workers share the directory
        public.write_bytes(pem)
    return log


def prepare_state(settings: PipelineSettings) -> str:
    """Open every store once as a writer (creating or migrating its schema) and close it, so a
    bad URL, wrong credentials or a newer schema stop the start with a typed error, before any
    worker serves. Returns where the state lives (the URL without its password)."""
    stores = settings.stores
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    open_audit_log(settings).close()
    open_ledger_store(stores.target(LEDGER_FILE)).close()
    open_audit_chain(stores.target(BREAK_GLASS_FILE)).close()
    open_drift_latch(stores.target(DRIFT_LATCH_FILE)).close()
    return stores.where


def build_pipeline(settings: PipelineSettings, *, registry: Any = None) -> GovernedPipeline:
    """The offline pipeline: a locally trained model behind its worker, every member on one
    metrics registry, the drift watch on its schedule. Close it with ``pipeline.close()``."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    model_dir = settings.model_dir or build_tiny_model(
        settings.state_dir / "model", settings.model_spec
    )
    local = ModelWorker(
        model_dir,
        registry=registry,
        batch_window_s=settings.batch_window_s,
        max_batch=settings.max_batch,
        prefix_cache_tokens=settings.prefix_cache_tokens,
    )
    backend = LocalModelBackend(local)
    drift = None
    if settings.drift is not None:
        drift = DriftWatch(
            backend.fingerprint_model(),
            settings.drift,
            registry=registry,
            latch=open_drift_latch(settings.stores.target(DRIFT_LATCH_FILE)),
        )
        drift.start()
    return GovernedPipeline(
        backend=backend,
        router=RuntimeRouter(),
        governor=EnergyGovernor(
            settings.period_budget,
            registry=registry,
            store=open_ledger_store(settings.stores.target(LEDGER_FILE)),
        ),
        trust=TrustMonitor(config_path=settings.trust_config_path, registry=registry),
        audit_log=open_audit_log(settings),
        drift=drift,
        mapping=settings.mapping,
        owns_model=True,
    )
