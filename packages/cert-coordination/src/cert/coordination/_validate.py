"""Argument checks shared by the public entry points: typed errors that name field and value."""

from __future__ import annotations

import math
from typing import Any

from cert.coordination.errors import CoordinationInputError

MAX_TEXT_CHARS = 200_000


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_int(name: str, value: Any, *, minimum: int, maximum: int) -> int:
    """Return ``value`` if it is an int (not a bool) in [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise CoordinationInputError(
            f"{name} must be an integer, got {type(value).__name__} {_shown(value)}",
            context={"field": name},
        )
    if not minimum <= value <= maximum:
        raise CoordinationInputError(
            f"{name} must be in [{minimum}, {maximum}], got {value}", context={"field": name}
        )
    return value


def check_float(
    name: str,
    value: Any,
    *,
    minimum: float = -math.inf,
    maximum: float = math.inf,
    allow_minimum: bool = True,
) -> float:
    """Return ``value`` as float if it is a finite real number (not a bool) inside the bounds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CoordinationInputError(
            f"{name} must be a number, got {type(value).__name__} {_shown(value)}",
            context={"field": name},
        )
    number = float(value)
    if not math.isfinite(number):
        raise CoordinationInputError(
            f"{name} must be finite, got {number}", context={"field": name}
        )
    too_low = number < minimum or (not allow_minimum and number == minimum)
    if too_low or number > maximum:
        low = "[" if allow_minimum else "("
        raise CoordinationInputError(
            f"{name} must be in {low}{minimum}, {maximum}], got {number}", context={"field": name}
        )
    return number


def check_text(name: str, value: Any, *, max_chars: int = MAX_TEXT_CHARS) -> str:
    """Return ``value`` if it is a non-blank string of at most ``max_chars`` characters."""
    if not isinstance(value, str):
        raise CoordinationInputError(
            f"{name} must be a string, got {type(value).__name__} {_shown(value)}",
            context={"field": name},
        )
    if not value.strip():
        raise CoordinationInputError(f"{name} must not be empty", context={"field": name})
    if len(value) > max_chars:
        raise CoordinationInputError(
            f"{name} has {len(value)} characters, more than the limit of {max_chars}",
            context={"field": name},
        )
    return value


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise CoordinationInputError(
            f"{name} must be one of {', '.join(choices)}, got {_shown(value)}",
            context={"field": name},
        )
    return value
