from __future__ import annotations

import dataclasses
import filecmp
from pathlib import Path
from typing import Any

import pytest
import yaml

from fusion_ops.config import (
    BackoffConfig,
    BudgetLimits,
    EarlyTerminationConfig,
    InsightCacheConfig,
    Multipliers,
    Thresholds,
    TripwireConfig,
    default_governance_mapping,
    load_governance_config,
)
from fusion_ops.errors import ConfigError
from fusion_ops.runtime_router import embedded_config_dir


def test_defaults_match_the_issue() -> None:
    cfg = load_governance_config()
    limits = cfg.budget_limits
    assert (
        limits.hard_limit_percentage,
        limits.auto_review_threshold,
        limits.approval_threshold,
    ) == (95, 85, 10000)
    m = cfg.multipliers
    assert (m.high_complexity, m.low_trust, m.high_entropy, m.emergency_discount) == (
        1.5,
        1.3,
        1.4,
        0.6,
    )
    t = cfg.budget_tripwire
    assert (t.breach_threshold, t.consecutive_limit, t.auto_recovery) == (12.0, 3, False)


def test_partial_override_file(tmp_path: Path) -> None:
    path = tmp_path / "o.yaml"
    path.write_text("budget_limits:\n  approval_threshold: 500\n")
    cfg = load_governance_config(path)
    assert cfg.budget_limits.approval_threshold == 500
    assert cfg.budget_limits.hard_limit_percentage == 95


@pytest.mark.parametrize(
    ("override", "match"),
    [
        (
            {"budget_limits": {"hard_limit_percentage": 150}},
            r"budget_limits\.hard_limit_percentage",
        ),
        ({"budget_limits": {"auto_review_threshold": 99}}, "must not exceed"),
        ({"multipliers": {"low_trust": "high"}}, r"multipliers\.low_trust must be a number"),
        ({"multipliers": {"low_trust": 0}}, r"multipliers\.low_trust must be in \(0"),
        ({"thresholds": {"entropy": float("nan")}}, r"thresholds\.entropy"),
        ({"budget_tripwire": {"consecutive_limit": 0}}, r"budget_tripwire\.consecutive_limit"),
        ({"budget_tripwire": {"auto_recovery": "no"}}, r"budget_tripwire\.auto_recovery"),
        ({"budget_tripwire": {"downgrade_parameters": [1]}}, "downgrade_parameters"),
        (
            {"recovery": {"insight_cache": {"ttl_seconds": 0}}},
            r"recovery\.insight_cache\.ttl_seconds",
        ),
        ({"budget_limit": {}}, "unknown key 'budget_limit'"),
        ({"budget_limits": 5}, "budget_limits must be a mapping"),
    ],
)
def test_invalid_overrides_name_the_key(override: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_governance_config(overrides=override)


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"- a list\n", "must hold a mapping"), (b"a: [\n", "not valid"), (b"\xff\xfe", "not valid")],
)
def test_malformed_files(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=match):
        load_governance_config(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_governance_config(tmp_path / "absent.yaml")


def test_repo_configs_equal_the_embedded_defaults(repo_root: Path) -> None:
    """configs/ holds copies of the package data as override examples: they must not drift."""
    repo_governance = yaml.safe_load((repo_root / "configs" / "energy_governance.yaml").read_text())
    assert repo_governance == default_governance_mapping()
    embedded = embedded_config_dir()
    repo_fusion = repo_root / "configs" / "fusion"
    files = [
        "routing.yaml",
        *[f"micro_overlays/{p.name}" for p in (embedded / "micro_overlays").glob("*.md")],
    ]
    _match, mismatch, errors = filecmp.cmpfiles(embedded, repo_fusion, files, shallow=False)
    assert (mismatch, errors) == ([], [])
    assert sorted(p.name for p in (repo_fusion / "micro_overlays").iterdir()) == sorted(
        p.name for p in (embedded / "micro_overlays").iterdir()
    )


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: BudgetLimits(hard_limit_percentage=float("nan")), r"hard_limit_percentage"),
        (lambda: BudgetLimits(approval_threshold=-1), r"budget_limits\.approval_threshold"),
        (lambda: BudgetLimits(approval_threshold=10**400), r"budget_limits\.approval_threshold"),
        (lambda: BudgetLimits(auto_review_threshold=99), "must not exceed"),
        (lambda: Multipliers(emergency_discount=0), r"multipliers\.emergency_discount"),
        (lambda: Multipliers(low_trust=float("inf")), r"multipliers\.low_trust"),
        (lambda: Thresholds(trust_floor=float("nan")), r"thresholds\.trust_floor"),
        (lambda: TripwireConfig(breach_threshold=float("nan")), "breach_threshold"),
        (lambda: TripwireConfig(consecutive_limit=True), "consecutive_limit"),
        (lambda: InsightCacheConfig(ttl_seconds=float("nan")), "ttl_seconds"),
        (lambda: EarlyTerminationConfig(quality_threshold=-0.1), "quality_threshold"),
        (lambda: BackoffConfig(min_budget_scale=float("nan")), "min_budget_scale"),
        (lambda: BackoffConfig(max_delay_seconds=float("inf")), "max_delay_seconds"),
    ],
)
def test_config_built_in_code_is_validated_like_yaml(build: Any, match: str) -> None:
    """A config made in code (not loaded from YAML) must not smuggle NaN or a zero multiplier
    past the governor: every section validates itself and names the key path."""
    with pytest.raises(ConfigError, match=match):
        build()


def test_a_governance_config_needs_validated_sections() -> None:
    cfg = load_governance_config()
    with pytest.raises(ConfigError, match="budget_limits must be a BudgetLimits"):
        dataclasses.replace(cfg, budget_limits={"hard_limit_percentage": float("nan")})


def test_integers_too_long_for_python_are_config_errors(tmp_path: Path) -> None:
    """Above 4300 digits even repr() and int() raise ValueError: messages must not crash."""
    with pytest.raises(ConfigError, match=r"approval_threshold must be in .* got an integer of"):
        BudgetLimits(approval_threshold=10**5000)
    with pytest.raises(ConfigError, match=r"consecutive_limit .* got an integer of"):
        TripwireConfig(consecutive_limit=-(10**5000))
    path = tmp_path / "huge.yaml"
    path.write_text("budget_limits:\n  approval_threshold: 1" + "0" * 5000 + "\n")
    with pytest.raises(ConfigError, match="not valid UTF-8 YAML"):
        load_governance_config(path)
