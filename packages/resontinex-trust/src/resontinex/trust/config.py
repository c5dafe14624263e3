"""Configuration: load, merge, validate once, freeze.

``validate_and_normalize_config`` turns a mapping into a :class:`TrustConfig`: every key checked
(errors name the key path and the bad value), weights normalised to sum 1, tier bounds and
actions resolved to tuples, and a stable ``config_hash`` computed. The gate only reads the
frozen object, so the hot path never copies or re-checks anything.

Sources, lowest priority first: the embedded defaults (package data), a YAML file (argument or
``$RESONTINEX_TRUST_CONFIG``), then the section of ``environments`` selected by the
``environment`` argument or ``$RESONTINEX_TRUST_ENV``. Sections merge key by key, except
``environments``: a file that has one replaces the embedded one whole, so the embedded
environment overrides never leak into a user's config.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Mapping

from resontinex.trust.errors import TrustConfigError
from resontinex.trust.signals import DECISIONS, SIGNAL_NAMES, TIERS, Decision

TYPE_CHECKING = False  # typing is not imported at runtime: it costs milliseconds of import time
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "CONFIG_ENV_VAR",
    "ENVIRONMENT_ENV_VAR",
    "BreakGlassSettings",
    "MonitorSettings",
    "TrustConfig",
    "default_config",
    "load_config",
    "validate_and_normalize_config",
]

CONFIG_ENV_VAR = "RESONTINEX_TRUST_CONFIG"
ENVIRONMENT_ENV_VAR = "RESONTINEX_TRUST_ENV"
MAX_CONFIG_BYTES = 1 << 20
MAX_TIER_BOUND = 1.01
MAX_WEIGHT = 1e6
"""Weights are relative; the cap keeps their sum finite (1e308 + 1e308 overflows) and names a
typo as one, instead of an OverflowError."""

_TOP_LEVEL_KEYS = frozenset(
    {
        "version",
        "weights",
        "risk_tiers",
        "tier_actions",
        "trust_floor",
        "entropy_threshold",
        "policy",
        "monitor",
        "break_glass",
        "environments",
    }
)


class _Record:
    """A slotted, immutable, keyword-built record (dataclasses would cost import time here)."""

    __slots__: tuple[str, ...] = ()

    def __init__(self, **values: Any) -> None:
        for name in self.__slots__:
            object.__setattr__(self, name, values[name])

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; cannot set {name!r}")

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, _Record)
            and type(other) is type(self)
            and self.as_dict() == other.as_dict()
        )

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, n) for n in self.__slots__))

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({fields})"

    def as_dict(self) -> dict[str, Any]:
        return {n: getattr(self, n) for n in self.__slots__}


class MonitorSettings(_Record):
    """Sliding-window health and circuit-breaker levels of :class:`TrustMonitor`."""

    __slots__ = (
        "circuit_breaker_error_rate",
        "degraded_error_rate",
        "min_samples",
        "unhealthy_error_rate",
        "window_max_events",
        "window_seconds",
    )
    window_seconds: float
    window_max_events: int
    min_samples: int
    degraded_error_rate: float
    unhealthy_error_rate: float
    circuit_breaker_error_rate: float


class BreakGlassSettings(_Record):
    """Who may override the gate, for how long, and where overrides are recorded."""

    __slots__ = ("audit_log_path", "authorized_operators", "max_ttl_seconds", "ttl_seconds")
    ttl_seconds: float
    max_ttl_seconds: float
    authorized_operators: tuple[str, ...]
    audit_log_path: str | None


class TrustConfig:
    """A validated, normalised, immutable gate configuration.

    ``hot`` packs what one evaluation reads into a single tuple (weights, tier bounds, actions,
    floor, entropy threshold, policy decisions) so the gate unpacks it in one step. A policy
    rule whose decision is EXECUTE is switched off there by an unreachable threshold (floor
    -inf, entropy +inf), which spares the gate two checks per call.
    """

    __slots__ = (
        "below_floor_decision",
        "break_glass",
        "config_hash",
        "entropy_decision",
        "entropy_threshold",
        "environment",
        "hot",
        "monitor",
        "tier_actions",
        "tier_bounds",
        "trust_floor",
        "version",
        "weights",
    )

    weights: tuple[float, float, float]
    tier_bounds: tuple[float, float, float, float]
    tier_actions: tuple[Decision, Decision, Decision, Decision]
    trust_floor: float
    entropy_threshold: float
    below_floor_decision: Decision
    entropy_decision: Decision
    monitor: MonitorSettings
    break_glass: BreakGlassSettings
    version: str
    environment: str | None
    config_hash: str
    hot: tuple[Any, ...]

    def __init__(self, **fields: Any) -> None:
        for name in self.__slots__:
            if name not in ("hot", "config_hash"):
                object.__setattr__(self, name, fields[name])
        object.__setattr__(
            self,
            "hot",
            (
                *self.weights,
                *self.tier_bounds[:3],
                *self.tier_actions,
                self.trust_floor
                if self.below_floor_decision is not Decision.EXECUTE
                else -math.inf,
                self.entropy_threshold
                if self.entropy_decision is not Decision.EXECUTE
                else math.inf,
                self.below_floor_decision,
                self.entropy_decision,
            ),
        )
        import hashlib  # once per config, off the import path
        import json

        canonical = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        object.__setattr__(self, "config_hash", hashlib.sha256(canonical.encode()).hexdigest()[:12])

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"TrustConfig is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"TrustConfig is immutable; cannot delete {name!r}")

    def __copy__(self) -> TrustConfig:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> TrustConfig:
        return self

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TrustConfig) and other.config_hash == self.config_hash

    def __hash__(self) -> int:
        return hash(self.config_hash)

    def __repr__(self) -> str:
        return f"TrustConfig(version={self.version!r}, hash={self.config_hash!r})"

    def weight_of(self, signal: str) -> float:
        return self.weights[SIGNAL_NAMES.index(signal)]

    def as_dict(self) -> dict[str, Any]:
        """The normalised config as plain JSON-able data (what ``config_hash`` is computed from)."""
        return {
            "version": self.version,
            "environment": self.environment,
            "weights": dict(zip(SIGNAL_NAMES, self.weights, strict=True)),
            "risk_tiers": {t.value: b for t, b in zip(TIERS, self.tier_bounds, strict=True)},
            "tier_actions": {
                t.value: d.value for t, d in zip(TIERS, self.tier_actions, strict=True)
            },
            "trust_floor": self.trust_floor,
            "entropy_threshold": self.entropy_threshold,
            "policy": {
                "below_floor": self.below_floor_decision.value,
                "entropy_flag": self.entropy_decision.value,
            },
            "monitor": self.monitor.as_dict(),
            "break_glass": {
                **self.break_glass.as_dict(),
                "authorized_operators": list(self.break_glass.authorized_operators),
            },
        }


# ---------------------------------------------------------------- field checks


def _number(path: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TrustConfigError(path, value, "expected a number")
    try:
        number = float(value)
    except OverflowError:  # an int beyond the float range, e.g. 10**400
        raise TrustConfigError(path, value, "must be finite") from None
    if not math.isfinite(number):
        raise TrustConfigError(path, value, "must be finite")
    if not low <= number <= high:
        raise TrustConfigError(path, value, f"must be in [{low}, {high}]")
    return number


def _integer(path: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TrustConfigError(path, value, "expected an integer")
    if not low <= value <= high:
        raise TrustConfigError(path, value, f"must be in [{low}, {high}]")
    return value


def _decision(path: str, value: object) -> Decision:
    if isinstance(value, Decision):
        return value
    if isinstance(value, str) and value.upper() in Decision.__members__:
        return Decision[value.upper()]
    names = ", ".join(d.value for d in DECISIONS)
    raise TrustConfigError(path, value, f"unknown decision; expected one of {names}")


def _section(path: str, value: object, keys: frozenset[str] | tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TrustConfigError(path, value, "expected a mapping")
    for key in value:
        if key not in keys:
            raise TrustConfigError(
                f"{path}.{key}", value[key], f"unknown key; allowed: {sorted(keys)}"
            )
    for key in keys:
        if key not in value:
            raise TrustConfigError(f"{path}.{key}", None, "required key is missing")
    return value


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


# ---------------------------------------------------------------- sections


def _weights(raw: object) -> tuple[float, float, float]:
    section = _section("weights", raw, SIGNAL_NAMES)
    values = [_number(f"weights.{n}", section[n], 0.0, MAX_WEIGHT) for n in SIGNAL_NAMES]
    total = math.fsum(values)
    if total <= 0.0:
        raise TrustConfigError("weights", dict(section), "weights must not all be zero")
    a, r, c = (v / total for v in values)
    return (a, r, c)


def _tiers(raw: object) -> tuple[float, float, float, float]:
    names = tuple(t.value for t in TIERS)
    section = _section("risk_tiers", raw, names)
    bounds = [_number(f"risk_tiers.{n}", section[n], 0.0, MAX_TIER_BOUND) for n in names]
    for lower_name, upper_name, lower, upper in zip(
        names, names[1:], bounds, bounds[1:], strict=False
    ):
        if not lower < upper:
            raise TrustConfigError(
                f"risk_tiers.{upper_name}",
                section[upper_name],
                f"tier bounds must increase strictly; {lower_name} is {lower}",
            )
    if bounds[-1] < 1.0:
        raise TrustConfigError(
            "risk_tiers.pass", section["pass"], "must be >= 1.0 to cover every score"
        )
    b0, b1, b2, b3 = bounds
    return (b0, b1, b2, b3)


def _actions(raw: object) -> tuple[Decision, Decision, Decision, Decision]:
    names = tuple(t.value for t in TIERS)
    section = _section("tier_actions", raw, names)
    a0, a1, a2, a3 = (_decision(f"tier_actions.{n}", section[n]) for n in names)
    return (a0, a1, a2, a3)


def _monitor(raw: object) -> MonitorSettings:
    keys = MonitorSettings.__slots__
    s = _section("monitor", raw, keys)
    settings = MonitorSettings(
        window_seconds=_number("monitor.window_seconds", s["window_seconds"], 1e-3, 86400.0 * 30),
        window_max_events=_integer("monitor.window_max_events", s["window_max_events"], 1, 10**7),
        min_samples=_integer("monitor.min_samples", s["min_samples"], 1, 10**7),
        degraded_error_rate=_number(
            "monitor.degraded_error_rate", s["degraded_error_rate"], 0.0, 1.0
        ),
        unhealthy_error_rate=_number(
            "monitor.unhealthy_error_rate", s["unhealthy_error_rate"], 0.0, 1.0
        ),
        circuit_breaker_error_rate=_number(
            "monitor.circuit_breaker_error_rate", s["circuit_breaker_error_rate"], 0.0, 1.0
        ),
    )
    if settings.min_samples > settings.window_max_events:  # the window could never fill
        raise TrustConfigError(
            "monitor.min_samples",
            settings.min_samples,
            f"must not exceed monitor.window_max_events ({settings.window_max_events}), "
            "or health and the circuit breaker would never judge",
        )
    if settings.degraded_error_rate > settings.unhealthy_error_rate:
        raise TrustConfigError(
            "monitor.degraded_error_rate",
            settings.degraded_error_rate,
            "must not exceed monitor.unhealthy_error_rate",
        )
    return settings


def _break_glass(raw: object) -> BreakGlassSettings:
    keys = BreakGlassSettings.__slots__
    s = _section("break_glass", raw, keys)
    ttl = _number("break_glass.ttl_seconds", s["ttl_seconds"], 1.0, 86400.0)
    max_ttl = _number("break_glass.max_ttl_seconds", s["max_ttl_seconds"], 1.0, 86400.0)
    if ttl > max_ttl:
        raise TrustConfigError("break_glass.ttl_seconds", ttl, "must not exceed max_ttl_seconds")
    operators = s["authorized_operators"]
    if not isinstance(operators, list | tuple):
        raise TrustConfigError("break_glass.authorized_operators", operators, "expected a list")
    for i, op in enumerate(operators):
        if not isinstance(op, str) or not op.strip():
            raise TrustConfigError(
                f"break_glass.authorized_operators[{i}]", op, "expected a non-empty string"
            )
    path = s["audit_log_path"]
    if path is not None and (not isinstance(path, str) or not path.strip()):
        raise TrustConfigError("break_glass.audit_log_path", path, "expected a path string or null")
    return BreakGlassSettings(
        ttl_seconds=ttl,
        max_ttl_seconds=max_ttl,
        authorized_operators=tuple(operators),
        audit_log_path=path,
    )


# ---------------------------------------------------------------- public entry points


_defaults_raw: dict[str, Any] | None = None
_default_config: TrustConfig | None = None


def _embedded_defaults() -> dict[str, Any]:
    global _defaults_raw
    if _defaults_raw is None:
        from importlib import resources

        text = resources.files("resontinex.trust").joinpath("data/defaults.yaml").read_text("utf-8")
        _defaults_raw = _parse_yaml(text, "<embedded defaults>")
    return copy.deepcopy(_defaults_raw)


def _parse_yaml(text: str, source: str) -> dict[str, Any]:
    import yaml  # PyYAML: imported on first load so `import resontinex.trust` stays light

    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise TrustConfigError(source, text[:80], f"malformed YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise TrustConfigError(source, data, "top level must be a mapping")
    return data


def validate_and_normalize_config(
    raw: Mapping[str, Any] | TrustConfig | None = None, *, environment: str | None = None
) -> TrustConfig:
    """Merge ``raw`` onto the embedded defaults, apply an environment section, validate, freeze.

    A :class:`TrustConfig` is returned unchanged (it is already valid). Run this once per config
    and pass the result to every gate.
    """
    if isinstance(raw, TrustConfig):
        return raw
    if raw is not None and not isinstance(raw, Mapping):
        raise TrustConfigError("<config>", raw, "expected a mapping")
    raw = raw or {}
    for key in raw:
        if key not in _TOP_LEVEL_KEYS:
            raise TrustConfigError(
                str(key), raw[key], f"unknown key; allowed: {sorted(_TOP_LEVEL_KEYS)}"
            )
    defaults = _embedded_defaults()
    if "environments" in raw:  # a file's environments replace the embedded ones, never mix
        defaults.pop("environments")
    merged = _deep_merge(defaults, raw)
    environments = merged.pop("environments", None)
    environments = {} if environments is None else environments
    if not isinstance(environments, Mapping):
        raise TrustConfigError("environments", environments, "expected a mapping")
    if environment is not None:
        if environment not in environments:
            raise TrustConfigError(
                "environments", environment, f"unknown environment; known: {sorted(environments)}"
            )
        override = environments[environment]
        if not isinstance(override, Mapping):
            raise TrustConfigError(f"environments.{environment}", override, "expected a mapping")
        for key in override:
            if key not in _TOP_LEVEL_KEYS - {"environments"}:
                raise TrustConfigError(
                    f"environments.{environment}.{key}", override[key], "unknown key"
                )
        merged = _deep_merge(merged, override)
    version = merged.get("version")
    if (
        isinstance(version, bool)
        or not isinstance(version, str | int | float)
        or (isinstance(version, float) and not math.isfinite(version))
        or str(version) == ""
    ):
        raise TrustConfigError("version", version, "expected a non-empty version string")
    policy = _section("policy", merged.get("policy"), ("below_floor", "entropy_flag"))
    return TrustConfig(
        version=str(version),
        environment=environment,
        weights=_weights(merged.get("weights")),
        tier_bounds=_tiers(merged.get("risk_tiers")),
        tier_actions=_actions(merged.get("tier_actions")),
        trust_floor=_number("trust_floor", merged.get("trust_floor"), 0.0, 1.0),
        entropy_threshold=_number("entropy_threshold", merged.get("entropy_threshold"), 0.0, 1.0),
        below_floor_decision=_decision("policy.below_floor", policy["below_floor"]),
        entropy_decision=_decision("policy.entropy_flag", policy["entropy_flag"]),
        monitor=_monitor(merged.get("monitor")),
        break_glass=_break_glass(merged.get("break_glass")),
    )


def load_config(
    path: str | os.PathLike[str] | None = None, *, environment: str | None = None
) -> TrustConfig:
    """Load a YAML config (``path``, else ``$RESONTINEX_TRUST_CONFIG``, else the embedded defaults).

    ``environment`` (else ``$RESONTINEX_TRUST_ENV``) selects a section of ``environments`` to
    merge on top.
    """
    path = path if path is not None else os.environ.get(CONFIG_ENV_VAR) or None
    environment = (
        environment if environment is not None else os.environ.get(ENVIRONMENT_ENV_VAR) or None
    )
    raw: dict[str, Any] = {}
    if path is not None:
        from pathlib import Path

        file = Path(path)
        try:
            size = file.stat().st_size
            if size > MAX_CONFIG_BYTES:
                raise TrustConfigError(
                    str(file), size, f"config file larger than {MAX_CONFIG_BYTES} bytes"
                )
            text = file.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise TrustConfigError(
                str(file), str(path), f"cannot read config file: {exc}"
            ) from None
        raw = _parse_yaml(text, str(file))
    return validate_and_normalize_config(raw, environment=environment)


def default_config() -> TrustConfig:
    """The embedded defaults, validated once per process."""
    global _default_config
    if _default_config is None:
        _default_config = validate_and_normalize_config({})
    return _default_config
