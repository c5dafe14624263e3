"""Argument checks shared by every public entry point: typed errors that name field and value."""

from __future__ import annotations

import math
from typing import Any

from fusion_ops.errors import InvalidInputError


def show(value: Any) -> str:
    """repr for error messages, at most 80 characters; a huge int is described instead (its
    repr would be enormous, and above 4300 digits raises ValueError itself)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def as_float(value: int | float) -> float:
    """``float(value)``, with an int beyond float range as inf (it is no more usable)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf


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
        raise error(f"{field} must be a number, got {type(value).__name__} {show(value)}")
    number = as_float(value)
    if not math.isfinite(number):
        raise error(f"{field} must be finite, got {show(value)}")
    if minimum is not None:
        if exclusive_minimum and number <= minimum:
            raise error(f"{field} must be > {minimum}, got {show(value)}")
        if not exclusive_minimum and number < minimum:
            raise error(f"{field} must be >= {minimum}, got {show(value)}")
    if maximum is not None and number > maximum:
        raise error(f"{field} must be <= {maximum}, got {show(value)}")
    return number


def integer(
    field: str, value: Any, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """Return ``value`` as int; refuse bools, floats and values out of range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(
            f"{field} must be an integer, got {type(value).__name__} {show(value)}"
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
        raise error(f"{field} must be a string, got {type(value).__name__} {show(value)}")
    if not allow_empty and not value.strip():
        raise error(f"{field} must not be empty")
    if len(value) > max_chars:
        raise error(f"{field} is too long: {len(value)} characters (limit {max_chars})")
    return value
