"""Typed errors of cert-coordination.

Every error derives from :class:`CoordinationError`, itself a
:class:`cert.runtime.errors.CERTError`, so callers can catch the whole package at once or one
failure precisely. Messages name the field and the offending value; they never contain API keys.
"""

from __future__ import annotations

from typing import Any

from cert.runtime.errors import BudgetExceededError, CERTError, InvalidInputError


class CoordinationError(CERTError):
    """Base class of every error raised by cert.coordination."""


class CoordinationInputError(CoordinationError, InvalidInputError):
    """An argument or configuration value is invalid (wrong type, NaN, out of range, empty...)."""


class PriceTableError(CoordinationError):
    """The YAML price table is malformed; the message names the key path."""


class UnknownModelError(CoordinationError):
    """A model has no price in the table: its cost is unknown, never assumed to be $0."""


class CostCapExceededError(CoordinationError, BudgetExceededError):
    """A request's worst-case cost does not fit under the rolling hourly cap."""


class APICallError(CoordinationError):
    """The Messages API answered with an error after the SDK's own retries.

    ``status_code`` is the HTTP status (None for connection failures and timeouts) and
    ``error_type`` the API's error type (``overloaded_error``, ``invalid_request_error``...).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None,
        error_type: str,
        recoverable: bool,
        retry_after: float | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            message,
            recoverable=recoverable,
            retry_after=retry_after,
            context={**(context or {}), "status_code": status_code, "error_type": error_type},
        )
        self.status_code = status_code
        self.error_type = error_type


class BaselineError(CoordinationError):
    """No usable baseline could be measured (every judge verdict failed to parse)."""


class CacheError(CoordinationError):
    """The baseline cache file is unreadable or holds a corrupted entry."""


class MetricsUndefinedError(CoordinationError):
    """A coordination metric is undefined for the given scores (e.g. γ with a zero baseline)."""
