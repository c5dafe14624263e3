"""resontinex.trust: the CompositeTrustGate, its calibration, monitor and break-glass.

The core (gate, inputs, config) imports only the standard library; PyYAML loads on the first
config read. Calibration, break-glass, the audit log, the monitor (prometheus-client) and the
batch path (numpy) are resolved lazily on first attribute access.
"""

from __future__ import annotations

from resontinex.trust.__about__ import __version__
from resontinex.trust.composite_trust_gate import (
    CompositeTrustGate,
    explain_schema,
    logit_contributions,
)
from resontinex.trust.config import (
    TrustConfig,
    default_config,
    load_config,
    validate_and_normalize_config,
)
from resontinex.trust.errors import (
    AuditLogError,
    AuditTamperError,
    BreakGlassError,
    CalibratedScoreError,
    CalibrationError,
    TrustConfigError,
    TrustError,
    TrustInputError,
    TrustInputTypeError,
    TrustStoreCorruptError,
    TrustStoreError,
    TrustStoreSchemaError,
    TrustStoreUnavailableError,
    UnauthorizedOverrideError,
)
from resontinex.trust.signals import Decision, InputVector, RiskTier, route_to_resontinex

TYPE_CHECKING = False  # typing is not imported at runtime: it costs milliseconds of import time
if TYPE_CHECKING:
    from typing import Any

    from resontinex.trust.audit import AuditLog, AuditVerification
    from resontinex.trust.auditstore import PostgresAuditStore, SQLiteAuditStore, open_audit_chain
    from resontinex.trust.batch import BatchResult, evaluate_batch
    from resontinex.trust.breakglass import (
        OverrideRecord,
        active_overrides,
        break_glass_override,
    )
    from resontinex.trust.calibration import CalibrationAdapter, calibration_report
    from resontinex.trust.monitor import TrustMetrics, TrustMonitor

# Loaded on first use, so `import resontinex.trust` stays light (see test_import.py).
_LAZY = {
    "AuditLog": "resontinex.trust.audit",
    "AuditVerification": "resontinex.trust.audit",
    "PostgresAuditStore": "resontinex.trust.auditstore",
    "SQLiteAuditStore": "resontinex.trust.auditstore",
    "open_audit_chain": "resontinex.trust.auditstore",
    "active_overrides": "resontinex.trust.breakglass",
    "BatchResult": "resontinex.trust.batch",
    "evaluate_batch": "resontinex.trust.batch",
    "OverrideRecord": "resontinex.trust.breakglass",
    "break_glass_override": "resontinex.trust.breakglass",
    "CalibrationAdapter": "resontinex.trust.calibration",
    "calibration_report": "resontinex.trust.calibration",
    "TrustMetrics": "resontinex.trust.monitor",
    "TrustMonitor": "resontinex.trust.monitor",
}

__all__ = [
    "AuditLog",
    "AuditLogError",
    "AuditTamperError",
    "AuditVerification",
    "BatchResult",
    "BreakGlassError",
    "CalibratedScoreError",
    "CalibrationAdapter",
    "CalibrationError",
    "CompositeTrustGate",
    "Decision",
    "InputVector",
    "OverrideRecord",
    "PostgresAuditStore",
    "RiskTier",
    "SQLiteAuditStore",
    "TrustConfig",
    "TrustConfigError",
    "TrustError",
    "TrustInputError",
    "TrustInputTypeError",
    "TrustMetrics",
    "TrustMonitor",
    "TrustStoreCorruptError",
    "TrustStoreError",
    "TrustStoreSchemaError",
    "TrustStoreUnavailableError",
    "UnauthorizedOverrideError",
    "__version__",
    "active_overrides",
    "break_glass_override",
    "calibration_report",
    "default_config",
    "evaluate_batch",
    "explain_schema",
    "load_config",
    "logit_contributions",
    "open_audit_chain",
    "route_to_resontinex",
    "validate_and_normalize_config",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'resontinex.trust' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
