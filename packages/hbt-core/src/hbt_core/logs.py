"""Structured JSON logging with a correlation id held in a ``ContextVar``."""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar

correlation_id: ContextVar[str] = ContextVar("hbt_correlation_id", default="-")


class JsonFormatter(logging.Formatter):
    """One JSON object per record; ``extra={"fields": {...}}`` adds structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": record.created,
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": correlation_id.get(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            payload.update(fields)
        return json.dumps(payload, default=str)
