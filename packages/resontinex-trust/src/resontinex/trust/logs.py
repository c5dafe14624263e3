"""Structured JSON logging through stdlib ``logging``, with a correlation id and redaction.

Each event is one log record whose message is a JSON object (so any handler writes a JSON
line) and whose ``trust_event`` attribute holds the same dict for structured handlers. Keys that
look like secrets (tokens, passwords, API keys, ...) are replaced by ``"[REDACTED]"`` at any depth.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["REDACTED", "correlation_id", "correlation_scope", "log_event", "redact"]

REDACTED = "[REDACTED]"
_SECRET_KEY = re.compile(r"token|secret|passw|api[_-]?key|authori[sz]ation|credential|cookie", re.I)

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "resontinex_trust_correlation_id", default=None
)


@contextlib.contextmanager
def correlation_scope(value: str | None = None) -> Iterator[str]:
    """Bind a correlation id (a fresh one if ``value`` is None) for the enclosed log events."""
    cid = value or uuid.uuid4().hex
    token = correlation_id.set(cid)
    try:
        yield cid
    finally:
        correlation_id.reset(token)


def redact(value: Any) -> Any:
    """A copy of ``value`` with every secret-looking mapping key's value replaced."""
    if isinstance(value, Mapping):
        return {
            str(k): REDACTED if _SECRET_KEY.search(str(k)) else redact(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def log_event(logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    """Emit one JSON log line for ``event`` if ``logger`` is enabled for ``level``."""
    if not logger.isEnabledFor(level):
        return
    payload = {"event": event, "correlation_id": correlation_id.get(), **redact(fields)}
    logger.log(
        level, json.dumps(payload, sort_keys=True, default=str), extra={"trust_event": payload}
    )
