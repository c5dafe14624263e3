"""Runtime settings from ``CERT_*`` environment variables, validated on the way in.

=========================== ===================== ======================================= =======
variable                    field                 accepted values                         default
=========================== ===================== ======================================= =======
``CERT_LOG_LEVEL``          ``log_level``         DEBUG, INFO, WARNING, ERROR, CRITICAL   INFO
``CERT_LOG_FORMAT``         ``log_format``        json, text                              json
``CERT_LOG_FILE``           ``log_file``          a path (rotating file log)              unset
``CERT_METRICS_ENABLED``    ``metrics_enabled``   true/false, 1/0, yes/no, on/off         true
``CERT_DEVICE``             ``device``            auto, cpu, cuda, cuda:N, mps            auto
``CERT_MAX_MEMORY_GB``      ``max_memory_gb``     a number > 0                            unset
``CERT_REQUEST_TIMEOUT_S``  ``request_timeout_s`` a number > 0                            60
=========================== ===================== ======================================= =======

An unset or empty variable takes the default. A bad value raises :class:`InvalidInputError`
whose message names the variable and the value.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from cert.runtime.errors import InvalidInputError

__all__ = [
    "ENV_VARS",
    "RuntimeSettings",
    "check_log_format",
    "check_log_level",
    "resolve_device",
]

_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_FORMATS = ("json", "text")
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")

#: field name -> environment variable name
ENV_VARS: dict[str, str] = {
    "log_level": "CERT_LOG_LEVEL",
    "log_format": "CERT_LOG_FORMAT",
    "log_file": "CERT_LOG_FILE",
    "metrics_enabled": "CERT_METRICS_ENABLED",
    "device": "CERT_DEVICE",
    "max_memory_gb": "CERT_MAX_MEMORY_GB",
    "request_timeout_s": "CERT_REQUEST_TIMEOUT_S",
}


def _bad(field: str, value: Any, expected: str) -> InvalidInputError:
    return InvalidInputError(
        f"{field}={value!r}: expected {expected}",
        context={"field": field, "value": value if isinstance(value, str) else repr(value)},
    )


# Each checker takes (field label, value) and returns the normalised value or raises.
def check_log_level(field: str, value: Any) -> str:
    """A logging level name, upper-cased; errors name ``field`` and the value."""
    if isinstance(value, str) and value.strip().upper() in _LEVELS:
        return value.strip().upper()
    raise _bad(field, value, f"one of {', '.join(_LEVELS)}")


def check_log_format(field: str, value: Any) -> str:
    """``json`` or ``text``, lower-cased; errors name ``field`` and the value."""
    if isinstance(value, str) and value.strip().lower() in _FORMATS:
        return value.strip().lower()
    raise _bad(field, value, f"one of {', '.join(_FORMATS)}")


def _device(field: str, value: Any) -> str:
    if isinstance(value, str) and _DEVICE.match(value.strip().lower()):
        return value.strip().lower()
    raise _bad(field, value, "auto, cpu, cuda, cuda:N or mps")


def _bool(field: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise _bad(field, value, "true/false, 1/0, yes/no or on/off")


def _positive(field: str, value: Any) -> float:
    number = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise _bad(field, value, "a number > 0") from None
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        raise _bad(field, value, "a number > 0")
    if not math.isfinite(number) or number <= 0:
        raise _bad(field, value, "a finite number > 0")
    return float(number)


def _optional_positive(field: str, value: Any) -> float | None:
    return None if value is None else _positive(field, value)


def _optional_path(field: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip() and "\x00" not in value:
        return value
    raise _bad(field, value, "a file path")


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "log_level": check_log_level,
    "log_format": check_log_format,
    "log_file": _optional_path,
    "metrics_enabled": _bool,
    "device": _device,
    "max_memory_gb": _optional_positive,
    "request_timeout_s": _positive,
}


@dataclass(frozen=True)
class RuntimeSettings:
    """Validated runtime settings; construct directly or with :meth:`from_env`."""

    log_level: str = "INFO"
    log_format: str = "json"
    metrics_enabled: bool = True
    device: str = "auto"
    max_memory_gb: float | None = None
    request_timeout_s: float = 60.0
    log_file: str | None = None

    def __post_init__(self) -> None:
        for spec in fields(self):
            checked = _CHECKS[spec.name](spec.name, getattr(self, spec.name))
            object.__setattr__(self, spec.name, checked)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RuntimeSettings:
        """Read the ``CERT_*`` variables from ``environ`` (default: ``os.environ``)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, variable in ENV_VARS.items():
            raw = env.get(variable)
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                continue
            values[name] = _CHECKS[name](variable, raw)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {spec.name: getattr(self, spec.name) for spec in fields(self)}


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` if torch sees a GPU, else ``cpu``; explicit devices pass validated.

    torch is imported only here and only for ``auto``; without torch the answer is ``cpu``.
    """
    device = _device("device", device)
    if device != "auto":
        return device
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"
