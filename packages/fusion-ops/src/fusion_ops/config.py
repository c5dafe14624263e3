"""Energy governance configuration: embedded defaults, YAML overrides, validation by key path.

``load_governance_config()`` returns the defaults shipped in the package; given a ``path``, it
deep-merges a YAML file over them (so an override may set only the keys it changes) and validates
the result; every error names the key path (``budget_limits.hard_limit_percentage``) and value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

from fusion_ops import _validate
from fusion_ops.errors import ConfigError

MAX_CONFIG_BYTES = 1_000_000
MAX_UNITS = 1e15  # the largest cost, budget or threshold in energy units
_T = TypeVar("_T")


def _number(
    where: str, value: Any, *, low: float, high: float = math.inf, low_open: bool = False
) -> float:
    """``value`` as a float in [low, high] (or (low, high]); ConfigError naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where} must be a number, got {_validate.show(value)}")
    number = _validate.as_float(value)
    if not math.isfinite(number) or number < low or number > high or (low_open and number == low):
        bracket = "(" if low_open else "["
        raise ConfigError(
            f"{where} must be in {bracket}{low}, {high}], got {_validate.show(value)}"
        )
    return number


def _int(where: str, value: Any, *, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{where} must be an integer >= {low}, got {_validate.show(value)}")
    return value


def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)  # normalise a field of a frozen dataclass


# Every config dataclass validates itself, so a config built in code (not from YAML) cannot
# smuggle NaN, a negative limit or a zero multiplier past the governor: errors name the key path.
@dataclass(frozen=True)
class BudgetLimits:
    hard_limit_percentage: float = 95.0
    auto_review_threshold: float = 85.0
    approval_threshold: float = 10000.0

    def __post_init__(self) -> None:
        for key in ("hard_limit_percentage", "auto_review_threshold"):
            _set(self, key, _number(f"budget_limits.{key}", getattr(self, key), low=0, high=100))
        _set(
            self,
            "approval_threshold",
            _number(
                "budget_limits.approval_threshold",
                self.approval_threshold,
                low=0,
                high=MAX_UNITS,
                low_open=True,
            ),
        )
        if self.auto_review_threshold > self.hard_limit_percentage:
            raise ConfigError(
                "budget_limits.auto_review_threshold must not exceed "
                f"budget_limits.hard_limit_percentage, got {self.auto_review_threshold} > "
                f"{self.hard_limit_percentage}"
            )


@dataclass(frozen=True)
class Multipliers:
    high_complexity: float = 1.5
    low_trust: float = 1.3
    high_entropy: float = 1.4
    emergency_discount: float = 0.6

    def __post_init__(self) -> None:
        for key in ("high_complexity", "low_trust", "high_entropy", "emergency_discount"):
            value = _number(
                f"multipliers.{key}", getattr(self, key), low=0, high=100, low_open=True
            )
            _set(self, key, value)


@dataclass(frozen=True)
class Thresholds:
    complexity: float = 0.7
    trust_floor: float = 0.6
    entropy: float = 0.72

    def __post_init__(self) -> None:
        for key in ("complexity", "trust_floor", "entropy"):
            _set(self, key, _number(f"thresholds.{key}", getattr(self, key), low=0, high=1))


@dataclass(frozen=True)
class TripwireConfig:
    breach_threshold: float = 12.0
    consecutive_limit: int = 3
    auto_recovery: bool = False
    recovery_clean_runs: int = 5
    downgrade_parameters: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = "budget_tripwire"
        threshold = _number(f"{where}.breach_threshold", self.breach_threshold, low=0, high=10_000)
        _set(self, "breach_threshold", threshold)
        _int(f"{where}.consecutive_limit", self.consecutive_limit, low=1)
        _int(f"{where}.recovery_clean_runs", self.recovery_clean_runs, low=1)
        if not isinstance(self.auto_recovery, bool):
            raise ConfigError(
                f"{where}.auto_recovery must be true or false, got {_validate.show(self.auto_recovery)}"
            )
        params = self.downgrade_parameters
        if not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params):
            raise ConfigError(f"{where}.downgrade_parameters must be a mapping of names")
        _set(self, "downgrade_parameters", dict(params))


@dataclass(frozen=True)
class InsightCacheConfig:
    ttl_seconds: float = 900.0
    max_entries: int = 1024

    def __post_init__(self) -> None:
        where = "recovery.insight_cache"
        ttl = _number(f"{where}.ttl_seconds", self.ttl_seconds, low=0, low_open=True)
        _set(self, "ttl_seconds", ttl)
        _int(f"{where}.max_entries", self.max_entries, low=1)


@dataclass(frozen=True)
class EarlyTerminationConfig:
    quality_threshold: float = 0.85
    max_budget_fraction: float = 0.70

    def __post_init__(self) -> None:
        for key in ("quality_threshold", "max_budget_fraction"):
            value = _number(f"recovery.early_termination.{key}", getattr(self, key), low=0, high=1)
            _set(self, key, value)


@dataclass(frozen=True)
class BackoffConfig:
    base_delay_seconds: float = 1.0
    max_delay_seconds: float = 60.0
    budget_scale_per_breach: float = 0.8
    min_budget_scale: float = 0.25

    def __post_init__(self) -> None:
        where = "recovery.adaptive_backoff"
        for key in ("base_delay_seconds", "max_delay_seconds"):
            _set(self, key, _number(f"{where}.{key}", getattr(self, key), low=0))
        for key in ("budget_scale_per_breach", "min_budget_scale"):
            value = _number(f"{where}.{key}", getattr(self, key), low=0, high=1, low_open=True)
            _set(self, key, value)


@dataclass(frozen=True)
class GovernanceConfig:
    budget_limits: BudgetLimits
    multipliers: Multipliers
    thresholds: Thresholds
    budget_tripwire: TripwireConfig
    insight_cache: InsightCacheConfig
    early_termination: EarlyTerminationConfig
    adaptive_backoff: BackoffConfig

    def __post_init__(self) -> None:
        for name, kind in _SECTIONS.items():
            if not isinstance(getattr(self, name), kind):
                raise ConfigError(
                    f"{name} must be a {kind.__name__}, got {_validate.show(getattr(self, name))}"
                )


_SECTIONS: dict[str, type] = {
    "budget_limits": BudgetLimits,
    "multipliers": Multipliers,
    "thresholds": Thresholds,
    "budget_tripwire": TripwireConfig,
    "insight_cache": InsightCacheConfig,
    "early_termination": EarlyTerminationConfig,
    "adaptive_backoff": BackoffConfig,
}


def read_yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping; size-limited, typed errors."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc.strerror}") from exc
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{what}: {path} is {size} bytes (limit {MAX_CONFIG_BYTES})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:  # a directory, or no read permission
        raise ConfigError(f"{what}: cannot read {path}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, yaml.YAMLError, ValueError) as exc:  # ValueError: an int too long
        raise ConfigError(f"{what}: {path} is not valid UTF-8 YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{what}: {path} must hold a mapping, got {type(data).__name__}")
    return data


def embedded_defaults_text(name: str) -> str:
    """The text of a file under ``fusion_ops/defaults`` (package data)."""
    return resources.files("fusion_ops").joinpath("defaults", name).read_text(encoding="utf-8")


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any], path: str) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        key_path = f"{path}.{key}" if path else str(key)
        if key not in base:
            raise ConfigError(f"unknown key {key_path!r}")
        if isinstance(base[key], dict) and key != "downgrade_parameters":
            if not isinstance(value, dict):
                raise ConfigError(f"{key_path} must be a mapping, got {type(value).__name__}")
            merged[key] = _deep_merge(base[key], value, key_path)
        else:
            merged[key] = value
    return merged


def _section(data: Mapping[str, Any], key_path: str) -> Mapping[str, Any]:
    node: Any = data
    for part in key_path.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    if not isinstance(node, Mapping):
        raise ConfigError(f"{key_path} must be a mapping")
    return node


def _build(kind: type[_T], data: Mapping[str, Any], key_path: str) -> _T:
    """``kind`` from the section at ``key_path``; a missing key reaches validation as None."""
    section = _section(data, key_path)
    return kind(**{f.name: section.get(f.name) for f in fields(kind)})  # type: ignore[arg-type]


def governance_from_mapping(data: Mapping[str, Any]) -> GovernanceConfig:
    """Validate a complete configuration mapping (defaults already merged)."""
    if data.get("version") != 1:
        raise ConfigError(f"version must be 1, got {_validate.show(data.get('version'))}")
    return GovernanceConfig(
        budget_limits=_build(BudgetLimits, data, "budget_limits"),
        multipliers=_build(Multipliers, data, "multipliers"),
        thresholds=_build(Thresholds, data, "thresholds"),
        budget_tripwire=_build(TripwireConfig, data, "budget_tripwire"),
        insight_cache=_build(InsightCacheConfig, data, "recovery.insight_cache"),
        early_termination=_build(EarlyTerminationConfig, data, "recovery.early_termination"),
        adaptive_backoff=_build(BackoffConfig, data, "recovery.adaptive_backoff"),
    )


def default_governance_mapping() -> dict[str, Any]:
    data = yaml.safe_load(embedded_defaults_text("energy_governance.yaml"))
    assert isinstance(data, dict)
    return data


def load_governance_config(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> GovernanceConfig:
    """Embedded defaults, optionally overridden by a YAML file and then by a mapping."""
    data = default_governance_mapping()
    if path is not None:
        data = _deep_merge(data, read_yaml_mapping(Path(path), "energy governance config"), "")
    if overrides is not None:
        if not isinstance(overrides, Mapping):
            raise ConfigError(f"overrides must be a mapping, got {type(overrides).__name__}")
        data = _deep_merge(data, overrides, "")
    return governance_from_mapping(data)
