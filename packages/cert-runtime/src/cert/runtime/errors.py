"""The CERT exception hierarchy: one base class, subclasses that name what went wrong.

Every error carries whether retrying could help (``recoverable``), an optional server hint of how
long to wait first (``retry_after``) and a structured ``context`` so callers can log and serialise
errors without parsing messages.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = [
    "AnalysisError",
    "BudgetExceededError",
    "CERTError",
    "CERTTimeoutError",
    "CircuitOpenError",
    "GPUOutOfMemoryError",
    "InvalidInputError",
    "ResourceLoadError",
    "RetriesExhaustedError",
]


class CERTError(Exception):
    """Base of every CERT error.

    ``recoverable`` tells retry policies whether trying again can succeed; ``retry_after`` is the
    minimum number of seconds to wait before doing so.
    """

    def __init__(
        self,
        message: str,
        *,
        recoverable: bool = False,
        retry_after: float | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        if retry_after is not None:
            if isinstance(retry_after, bool) or not isinstance(retry_after, (int, float)):
                raise TypeError(f"retry_after must be a number of seconds, got {retry_after!r}")
            if not math.isfinite(retry_after) or retry_after < 0:
                raise ValueError(f"retry_after must be finite and >= 0, got {retry_after!r}")
            retry_after = float(retry_after)
        super().__init__(message)
        self.message = str(message)
        self.recoverable = bool(recoverable)
        self.retry_after = retry_after
        self.context: dict[str, Any] = dict(context) if context is not None else {}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view: type, message, recoverable, retry_after, context."""
        return {
            "type": type(self).__name__,
            "message": self.message,
            "recoverable": self.recoverable,
            "retry_after": self.retry_after,
            "context": dict(self.context),
        }

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments are not restored by the default Exception pickling, which breaks
        # errors crossing process boundaries (e.g. concurrent.futures.ProcessPoolExecutor).
        return (
            _rebuild_error,
            (type(self), self.message, self.recoverable, self.retry_after, self.context),
        )


def _rebuild_error(
    cls: type[CERTError],
    message: str,
    recoverable: bool,
    retry_after: float | None,
    context: dict[str, Any],
) -> CERTError:
    error = cls.__new__(cls)
    CERTError.__init__(
        error, message, recoverable=recoverable, retry_after=retry_after, context=context
    )
    return error


class ResourceLoadError(CERTError):
    """A model, tokenizer, file or other resource could not be loaded."""


class GPUOutOfMemoryError(CERTError):
    """The accelerator ran out of memory; recoverable (a CPU fallback or smaller batch may work)."""

    def __init__(
        self,
        message: str,
        *,
        recoverable: bool = True,
        retry_after: float | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message, recoverable=recoverable, retry_after=retry_after, context=context)


class InvalidInputError(CERTError, ValueError):
    """An argument, setting or payload was rejected; the message names the field and the value."""


class AnalysisError(CERTError):
    """An analysis step failed for a reason other than bad input or resources."""


class CERTTimeoutError(CERTError, TimeoutError):
    """An operation did not finish within its time limit."""


class CircuitOpenError(CERTError):
    """A circuit breaker refused the call; ``retry_after`` = seconds until it half-opens.

    Not recoverable by default: failing fast is the point of a breaker, and a retry loop that slept
    through ``retry_after`` would undo it. Callers who want to wait can read ``retry_after``.
    """


class RetriesExhaustedError(CERTError):
    """Every attempt of a retry policy failed; ``__cause__`` is the last failure."""


class BudgetExceededError(CERTError):
    """A cost, token or rate budget would be exceeded by the call."""
