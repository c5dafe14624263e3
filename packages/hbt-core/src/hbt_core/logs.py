"""Structured JSON logging for hbt-core: cert-runtime's formatter, correlation id and redaction.

hbt-core used to carry its own formatter, which wrote messages and fields exactly as given (an
endpoint URL with credentials, a token inside an error message). It now reuses cert-runtime's,
which masks secrets by key and by value shape, so every member logs the same redacted way.
Log with :func:`log_event` (fields as keyword arguments) under the ``hbt_core`` logger.
"""

from __future__ import annotations

from cert.runtime.logging import (
    JsonFormatter,
    correlation_id,
    correlation_scope,
    log_event,
    redact,
)

__all__ = ["JsonFormatter", "correlation_id", "correlation_scope", "log_event", "redact"]
