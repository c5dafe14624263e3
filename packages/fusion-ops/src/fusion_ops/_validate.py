"""Argument checks shared by every public entry point: typed errors that name field and value."""

from __future__ import annotations

import math
from typing import Any

from fusion_ops.errors import InvalidInputError


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def finite_number(
    field: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    error: type[InvalidInputError] = InvalidInputError,
) -> float:
    """Return ``value`` as float; refuse bools, non-numbers, NaN/inf and values out of range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise error(f"{field} must be a number, got {type(value).__name__} {_show(value)}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond float range is no more usable than inf
        number = math.inf
    if not math.isfinite(number):
        raise error(f"{field} must be finite, got {_show(value)}")
    if minimum is not None:
        if exclusive_minimum and number <= minimum:
            raise error(f"{field} must be > {minimum}, got {_show(value)}")
        if not exclusive_minimum and number < minimum:
            raise error(f"{field} must be >= {minimum}, got {_show(value)}")
    if maximum is not None and number > maximum:
        raise error(f"{field} must be <= {maximum}, got {_show(value)}")
    return number


def integer(
    field: str, value: Any, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """Return ``value`` as int; refuse bools, floats and values out of range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(
            f"{field} must be an integer, got {type(value).__name__} {_show(value)}"
        )
    if minimum is not None and value < minimum:
        raise InvalidInputError(f"{field} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise InvalidInputError(f"{field} must be <= {maximum}, got {value}")
    return value


def text(
    field: str,
    value: Any,
    *,
    max_chars: int = 100_000,
    allow_empty: bool = False,
    error: type[InvalidInputError] = InvalidInputError,
) -> str:
    """Return ``value`` if it is a string of acceptable size."""
    if not isinstance(value, str):
        raise error(f"{field} must be a string, got {type(value).__name__} {_show(value)}")
    if not allow_empty and not value.strip():
        raise error(f"{field} must not be empty")
    if len(value) > max_chars:
        raise error(f"{field} is too long: {len(value)} characters (limit {max_chars})")
    return value
