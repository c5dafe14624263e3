"""Structured JSON logs with a correlation id held in a ContextVar (one id per run)."""

from __future__ import annotations

import contextvars
import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default="-")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, correlation id, extras."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": correlation_id.get(),
        }
        payload.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        return json.dumps(payload, default=str)


@contextmanager
def correlated(run_id: str | None = None) -> Iterator[str]:
    """Set a correlation id for everything logged inside the block."""
    token = correlation_id.set(run_id or uuid.uuid4().hex[:12])
    try:
        yield correlation_id.get()
    finally:
        correlation_id.reset(token)


def configure_cli_logging(level: int = logging.WARNING) -> None:
    """CLIs only: JSON lines on stderr for the t1_deploy loggers (libraries never configure)."""
    logger = logging.getLogger("t1_deploy")
    if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
