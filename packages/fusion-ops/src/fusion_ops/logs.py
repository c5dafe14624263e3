"""Structured JSON log events with a correlation id carried in a ``ContextVar``.

Library code calls :func:`log_event`; the message is one JSON object (``event``, the fields,
and ``correlation_id`` when one is set). Set the id around a unit of work with
:func:`correlation_scope` so every event it causes can be joined in the log store.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
from collections.abc import Iterator
from typing import Any

__all__ = ["correlation_id", "correlation_scope", "log_event"]

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fusion_ops_correlation_id", default=None
)


@contextlib.contextmanager
def correlation_scope(value: str) -> Iterator[None]:
    """Tag every event logged inside the block with ``value``."""
    token = correlation_id.set(value)
    try:
        yield
    finally:
        correlation_id.reset(token)


def log_event(logger: logging.Logger, level: int, event: str, /, **fields: Any) -> None:
    """Log ``{"event": event, **fields, "correlation_id": ...}`` as one JSON line."""
    if not logger.isEnabledFor(level):
        return
    record: dict[str, Any] = {"event": event, **fields}
    cid = correlation_id.get()
    if cid is not None:
        record["correlation_id"] = cid
    logger.log(level, json.dumps(record, default=str, sort_keys=True))
