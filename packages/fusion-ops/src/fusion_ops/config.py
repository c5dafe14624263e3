"""Energy governance configuration: embedded defaults, YAML overrides, validation by key path.

``load_governance_config()`` returns the defaults shipped in the package; given a ``path``, it
deep-merges a YAML file over them (so an override may set only the keys it changes) and validates
the result; every error names the key path (``budget_limits.hard_limit_percentage``) and value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from fusion_ops.errors import ConfigError

MAX_CONFIG_BYTES = 1_000_000


@dataclass(frozen=True)
class BudgetLimits:
    hard_limit_percentage: float = 95.0
    auto_review_threshold: float = 85.0
    approval_threshold: float = 10000.0


@dataclass(frozen=True)
class Multipliers:
    high_complexity: float = 1.5
    low_trust: float = 1.3
    high_entropy: float = 1.4
    emergency_discount: float = 0.6


@dataclass(frozen=True)
class Thresholds:
    complexity: float = 0.7
    trust_floor: float = 0.6
    entropy: float = 0.72


@dataclass(frozen=True)
class TripwireConfig:
    breach_threshold: float = 12.0
    consecutive_limit: int = 3
    auto_recovery: bool = False
    recovery_clean_runs: int = 5
    downgrade_parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InsightCacheConfig:
    ttl_seconds: float = 900.0
    max_entries: int = 1024


@dataclass(frozen=True)
class EarlyTerminationConfig:
    quality_threshold: float = 0.85
    max_budget_fraction: float = 0.70


@dataclass(frozen=True)
class BackoffConfig:
    base_delay_seconds: float = 1.0
    max_delay_seconds: float = 60.0
    budget_scale_per_breach: float = 0.8
    min_budget_scale: float = 0.25


@dataclass(frozen=True)
class GovernanceConfig:
    budget_limits: BudgetLimits
    multipliers: Multipliers
    thresholds: Thresholds
    budget_tripwire: TripwireConfig
    insight_cache: InsightCacheConfig
    early_termination: EarlyTerminationConfig
    adaptive_backoff: BackoffConfig


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
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
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


def _number(
    section: Mapping[str, Any],
    key_path: str,
    key: str,
    *,
    low: float,
    high: float = math.inf,
    low_open: bool = False,
) -> float:
    value = section.get(key)
    where = f"{key_path}.{key}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < low or number > high or (low_open and number == low):
        bracket = "(" if low_open else "["
        raise ConfigError(f"{where} must be in {bracket}{low}, {high}], got {value!r}")
    return number


def _int(section: Mapping[str, Any], key_path: str, key: str, *, low: int) -> int:
    value = section.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{key_path}.{key} must be an integer >= {low}, got {value!r}")
    return value


def governance_from_mapping(data: Mapping[str, Any]) -> GovernanceConfig:
    """Validate a complete configuration mapping (defaults already merged)."""
    if data.get("version") != 1:
        raise ConfigError(f"version must be 1, got {data.get('version')!r}")
    lim = _section(data, "budget_limits")
    limits = BudgetLimits(
        hard_limit_percentage=_number(
            lim, "budget_limits", "hard_limit_percentage", low=0, high=100
        ),
        auto_review_threshold=_number(
            lim, "budget_limits", "auto_review_threshold", low=0, high=100
        ),
        approval_threshold=_number(
            lim, "budget_limits", "approval_threshold", low=0, low_open=True
        ),
    )
    if limits.auto_review_threshold > limits.hard_limit_percentage:
        raise ConfigError(
            "budget_limits.auto_review_threshold must not exceed "
            f"budget_limits.hard_limit_percentage, got {limits.auto_review_threshold} > "
            f"{limits.hard_limit_percentage}"
        )
    mul = _section(data, "multipliers")
    multipliers = Multipliers(
        **{
            k: _number(mul, "multipliers", k, low=0, high=100, low_open=True)
            for k in ("high_complexity", "low_trust", "high_entropy", "emergency_discount")
        }
    )
    thr = _section(data, "thresholds")
    thresholds = Thresholds(
        **{
            k: _number(thr, "thresholds", k, low=0, high=1)
            for k in ("complexity", "trust_floor", "entropy")
        }
    )
    trip = _section(data, "budget_tripwire")
    if not isinstance(trip.get("auto_recovery"), bool):
        raise ConfigError(
            "budget_tripwire.auto_recovery must be true or false, "
            f"got {trip.get('auto_recovery')!r}"
        )
    downgrade = trip.get("downgrade_parameters")
    if not isinstance(downgrade, dict) or not all(isinstance(k, str) for k in downgrade):
        raise ConfigError("budget_tripwire.downgrade_parameters must be a mapping of names")
    tripwire = TripwireConfig(
        breach_threshold=_number(trip, "budget_tripwire", "breach_threshold", low=0, high=10_000),
        consecutive_limit=_int(trip, "budget_tripwire", "consecutive_limit", low=1),
        auto_recovery=trip["auto_recovery"],
        recovery_clean_runs=_int(trip, "budget_tripwire", "recovery_clean_runs", low=1),
        downgrade_parameters=dict(downgrade),
    )
    cache = _section(data, "recovery.insight_cache")
    early = _section(data, "recovery.early_termination")
    back = _section(data, "recovery.adaptive_backoff")
    backoff = BackoffConfig(
        base_delay_seconds=_number(back, "recovery.adaptive_backoff", "base_delay_seconds", low=0),
        max_delay_seconds=_number(back, "recovery.adaptive_backoff", "max_delay_seconds", low=0),
        budget_scale_per_breach=_number(
            back,
            "recovery.adaptive_backoff",
            "budget_scale_per_breach",
            low=0,
            high=1,
            low_open=True,
        ),
        min_budget_scale=_number(
            back, "recovery.adaptive_backoff", "min_budget_scale", low=0, high=1, low_open=True
        ),
    )
    return GovernanceConfig(
        budget_limits=limits,
        multipliers=multipliers,
        thresholds=thresholds,
        budget_tripwire=tripwire,
        insight_cache=InsightCacheConfig(
            ttl_seconds=_number(
                cache, "recovery.insight_cache", "ttl_seconds", low=0, low_open=True
            ),
            max_entries=_int(cache, "recovery.insight_cache", "max_entries", low=1),
        ),
        early_termination=EarlyTerminationConfig(
            quality_threshold=_number(
                early, "recovery.early_termination", "quality_threshold", low=0, high=1
            ),
            max_budget_fraction=_number(
                early, "recovery.early_termination", "max_budget_fraction", low=0, high=1
            ),
        ),
        adaptive_backoff=backoff,
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
