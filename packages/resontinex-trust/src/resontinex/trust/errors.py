"""Typed errors of resontinex-trust: one base class, one subclass per thing that went wrong.

Every message names the offending field (or key path) and the bad value, so an operator can fix
the input without reading the code.
"""

from __future__ import annotations


class TrustError(Exception):
    """Base class of every error raised by resontinex.trust."""


class TrustInputError(TrustError, ValueError):
    """A signal is outside [0, 1], NaN or infinite."""


class TrustInputTypeError(TrustInputError, TypeError):
    """A signal is not a real number (bool, str, None, ...)."""


class TrustConfigError(TrustError, ValueError):
    """A configuration is malformed; ``key_path`` names where (e.g. ``weights.epistemic_risk``)."""

    def __init__(self, key_path: str, value: object, reason: str) -> None:
        self.key_path = key_path
        self.value = value
        super().__init__(f"{key_path}: {reason} (got {value!r})")


class CalibrationError(TrustError, ValueError):
    """Calibration data or a serialised calibrator is invalid."""


class CalibratedScoreError(CalibrationError):
    """A calibrator answered something other than a finite probability in [0, 1].

    The gate refuses to decide on it (a broken calibrator is a failing part, never a PASS).
    """


class BreakGlassError(TrustError):
    """A break-glass override could not be granted."""


class UnauthorizedOverrideError(BreakGlassError, PermissionError):
    """The operator is not accepted by the configured authoriser."""


class AuditLogError(TrustError):
    """The audit log cannot be read or written."""


class AuditTamperError(AuditLogError):
    """The audit log's hash chain is broken: a record was edited, inserted or deleted."""


class TrustStoreError(TrustError):
    """A state store (SQLite file or PostgreSQL database) cannot be opened or used.

    Messages name the store as a path or as ``postgresql://user@host:port/db``, never with the
    password.
    """


class TrustStoreUnavailableError(TrustStoreError):
    """The database cannot be reached: server down, wrong credentials, malformed URL, no driver."""


class TrustStoreSchemaError(TrustStoreError):
    """The database holds a newer schema version, foreign tables, or no store to read."""


class TrustStoreCorruptError(TrustStoreError):
    """The file is not a readable SQLite database; it is left untouched."""
