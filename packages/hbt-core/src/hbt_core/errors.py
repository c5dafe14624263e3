"""Typed errors of hbt-core: one base class, subclasses name what went wrong."""

from __future__ import annotations

import numbers

import numpy as np


class HBTError(Exception):
    """Base class of every error raised by hbt-core."""


class InvalidInputError(HBTError, ValueError):
    """An argument has the wrong type, is out of range, empty, NaN/inf or too large."""


class DimensionMismatchError(InvalidInputError):
    """Two hypervectors, signatures or counters do not have the same dimension."""


class ModelFormatError(HBTError):
    """A model weight file is missing, malformed or inconsistent with its config."""


class IntegrityError(HBTError):
    """A proof, signature, commitment or package failed verification (tampering or corruption)."""


class AuditLogFormatError(HBTError):
    """A file is not a readable hbt audit log: missing, foreign, truncated or corrupt."""


class AuditStoreUnavailableError(AuditLogFormatError):
    """The audit log's database cannot be reached, refused the credentials, or its driver is
    not installed (the message names the database without its password)."""


class KeyConfigurationError(HBTError):
    """A signing key could not be loaded from the configured path or environment variable."""


class EdgeFormatError(IntegrityError):
    """An edge package is malformed, truncated, of an unknown version or tampered with."""


class EndpointError(HBTError):
    """A model endpoint could not be reached or answered with an unusable payload."""


def check_finite_number(
    name: str, value: object, *, low: float | None = None, high: float | None = None
) -> float:
    """Validate a real number (bool rejected) and return it as float; messages name the field."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InvalidInputError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    result = float(value)
    if result != result or result in (float("inf"), float("-inf")):
        raise InvalidInputError(f"{name} must be finite, got {value!r}")
    if low is not None and result < low:
        raise InvalidInputError(f"{name} must be >= {low}, got {value!r}")
    if high is not None and result > high:
        raise InvalidInputError(f"{name} must be <= {high}, got {value!r}")
    return result


def check_int(name: str, value: object, *, low: int | None = None, high: int | None = None) -> int:
    """Validate an integer (bool rejected) within optional bounds; the message names the field."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if low is not None and value < low:
        raise InvalidInputError(f"{name} must be >= {low}, got {value!r}")
    if high is not None and value > high:
        raise InvalidInputError(f"{name} must be <= {high}, got {value!r}")
    return value
