"""Input checks shared by every public entry point: fail early, name the field and the value."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from t1_deploy.errors import ConfigError, InvalidInputError

MAX_ROWS = 5_000_000
_CONFIG_SUFFIXES = ("Config", "Guards")


def _error(name: str, message: str) -> InvalidInputError:
    """Fields of configuration objects (`SomethingConfig.field`) raise ConfigError."""
    owner = name.split(".", 1)[0]
    return ConfigError(message) if owner.endswith(_CONFIG_SUFFIXES) else InvalidInputError(message)


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    integer: bool = False,
) -> float:
    """Return `value` as a float after rejecting bools, non-numbers, NaN/inf and out-of-range."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise _error(name, f"{name} must be a number, got {type(value).__name__}: {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise _error(name, f"{name} must be finite, got {value!r}")
    if integer and number != int(number):
        raise _error(name, f"{name} must be an integer, got {value!r}")
    if low is not None and number < low:
        raise _error(name, f"{name} must be >= {low}, got {value!r}")
    if high is not None and number > high:
        raise _error(name, f"{name} must be <= {high}, got {value!r}")
    return number


def check_int(name: str, value: Any, *, low: int | None = None, high: int | None = None) -> int:
    """Return `value` as an int (bools and floats with a fraction are rejected)."""
    return int(check_number(name, value, low=low, high=high, integer=True))


def check_array(
    name: str,
    value: Any,
    *,
    ndim: int = 1,
    min_len: int = 1,
    columns: int | None = None,
) -> npt.NDArray[np.float64]:
    """Return a finite float64 array of the given rank; reject ragged, empty, huge or NaN input."""
    if isinstance(value, (str, bytes, bool)) or value is None:
        raise _error(name, f"{name} must be an array of numbers, got {type(value).__name__}")
    raw = np.asarray(value) if not isinstance(value, np.ndarray) else value
    if raw.dtype == np.bool_:
        raise _error(name, f"{name} must hold numbers, not booleans")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise _error(name, f"{name} must be an array of numbers: {exc}") from exc
    if arr.dtype == object:
        raise _error(name, f"{name} must be an array of numbers")
    if arr.ndim != ndim:
        raise _error(name, f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    if arr.shape[0] < min_len:
        raise _error(name, f"{name} needs at least {min_len} rows, got {arr.shape[0]}")
    if arr.shape[0] > MAX_ROWS:
        raise _error(name, f"{name} has {arr.shape[0]} rows, more than {MAX_ROWS}")
    if columns is not None and (arr.ndim != 2 or arr.shape[1] != columns):
        raise _error(name, f"{name} must have {columns} columns, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0].tolist()
        raise _error(name, f"{name} holds a NaN or infinite value at index {bad}")
    return arr


def check_same_length(names: Sequence[str], arrays: Sequence[npt.NDArray[Any]]) -> None:
    """All arrays must have as many rows as the first one."""
    lengths = [len(a) for a in arrays]
    if len(set(lengths)) > 1:
        pairs = ", ".join(f"{n}={k}" for n, k in zip(names, lengths, strict=True))
        raise InvalidInputError(f"arrays must have the same length, got {pairs}")
