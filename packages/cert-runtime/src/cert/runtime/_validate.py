"""Argument checks shared by the runtime modules; each failure names the field and the value."""

from __future__ import annotations

import math
from typing import Any

from cert.runtime.errors import InvalidInputError


def positive_int(field: str, value: Any) -> int:
    """An int >= 1 (bool rejected: ``True`` is not a count)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(
            f"{field} must be an int, got {value!r}", context={"field": field, "value": repr(value)}
        )
    if value < 1:
        raise InvalidInputError(
            f"{field} must be >= 1, got {value!r}", context={"field": field, "value": value}
        )
    return value


def non_negative_float(field: str, value: Any) -> float:
    """A finite float >= 0 (bool, NaN and infinity rejected)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInputError(
            f"{field} must be a number, got {value!r}",
            context={"field": field, "value": repr(value)},
        )
    if not math.isfinite(value) or value < 0:
        raise InvalidInputError(
            f"{field} must be finite and >= 0, got {value!r}",
            context={"field": field, "value": repr(value)},
        )
    return float(value)


def non_empty_str(field: str, value: Any) -> str:
    """A non-blank string."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(
            f"{field} must be a non-empty string, got {value!r}",
            context={"field": field, "value": repr(value)},
        )
    return value


def callable_arg(field: str, value: Any) -> Any:
    """Any callable."""
    if not callable(value):
        raise InvalidInputError(
            f"{field} must be callable, got {value!r}",
            context={"field": field, "value": repr(value)},
        )
    return value
