"""Config loading, merging, validation errors (key path + value) and the stable config hash."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from resontinex.trust import (
    CompositeTrustGate,
    Decision,
    InputVector,
    TrustConfig,
    TrustConfigError,
    default_config,
    load_config,
    validate_and_normalize_config,
)
from resontinex.trust.config import CONFIG_ENV_VAR, ENVIRONMENT_ENV_VAR


def test_defaults_are_the_documented_values(config: TrustConfig) -> None:
    assert config.weights == (0.45, 0.35, 0.2)
    assert config.tier_bounds == (0.25, 0.5, 0.75, 1.01)
    assert config.tier_actions == (
        Decision.ABORT,
        Decision.REVIEW,
        Decision.EXECUTE,
        Decision.EXECUTE,
    )
    assert (config.trust_floor, config.entropy_threshold) == (0.6, 0.72)
    assert config.break_glass.authorized_operators == ()
    assert config.monitor.circuit_breaker_error_rate == 0.95
    assert validate_and_normalize_config({}) == config
    assert validate_and_normalize_config(config) is config


@pytest.mark.parametrize(
    ("raw", "key_path"),
    [
        ({"weights": {"epistemic_risk": -0.1}}, "weights.epistemic_risk"),
        ({"weights": {"alignment_score": 0, "epistemic_risk": 0, "confidence_band": 0}}, "weights"),
        ({"weights": {"alignment_score": float("nan")}}, "weights.alignment_score"),
        ({"weights": {"alignment_score": float("inf")}}, "weights.alignment_score"),
        ({"weights": {"alignment_score": True}}, "weights.alignment_score"),
        ({"weights": {"alignment_score": "0.4"}}, "weights.alignment_score"),
        ({"weights": {"alignmnt": 0.4}}, "weights.alignmnt"),
        ({"weights": [0.4, 0.3, 0.3]}, "weights"),
        ({"risk_tiers": {"block": 0.6}}, "risk_tiers.review"),
        ({"risk_tiers": {"review": 0.25}}, "risk_tiers.review"),
        ({"risk_tiers": {"block": -0.1}}, "risk_tiers.block"),
        ({"risk_tiers": {"pass": 2.0}}, "risk_tiers.pass"),
        ({"risk_tiers": {"pass": 0.9}}, "risk_tiers.pass"),
        ({"risk_tiers": {"extreme": 0.9}}, "risk_tiers.extreme"),
        ({"tier_actions": {"block": "EXPLODE"}}, "tier_actions.block"),
        ({"tier_actions": {"panic": "abort"}}, "tier_actions.panic"),
        ({"tier_actions": {"block": 3}}, "tier_actions.block"),
        ({"trust_floor": 1.5}, "trust_floor"),
        ({"trust_floor": -0.01}, "trust_floor"),
        ({"trust_floor": None}, "trust_floor"),
        ({"entropy_threshold": 7}, "entropy_threshold"),
        ({"policy": {"below_floor": "SOMETIMES"}}, "policy.below_floor"),
        ({"policy": {"surprise": "abort"}}, "policy.surprise"),
        ({"monitor": {"window_seconds": 0}}, "monitor.window_seconds"),
        ({"monitor": {"min_samples": 1.5}}, "monitor.min_samples"),
        (
            {"monitor": {"degraded_error_rate": 0.5, "unhealthy_error_rate": 0.1}},
            "monitor.degraded_error_rate",
        ),
        ({"break_glass": {"ttl_seconds": 7200}}, "break_glass.ttl_seconds"),
        ({"break_glass": {"authorized_operators": "alice"}}, "break_glass.authorized_operators"),
        (
            {"break_glass": {"authorized_operators": ["alice", ""]}},
            "break_glass.authorized_operators[1]",
        ),
        ({"break_glass": {"audit_log_path": 5}}, "break_glass.audit_log_path"),
        ({"version": ""}, "version"),
        ({"unknown_section": 1}, "unknown_section"),
        ({"environments": []}, "environments"),
    ],
)
def test_bad_config_names_key_path_and_value(raw: dict[str, Any], key_path: str) -> None:
    with pytest.raises(TrustConfigError) as caught:
        validate_and_normalize_config(raw)
    assert caught.value.key_path == key_path
    assert str(caught.value).startswith(f"{key_path}:")


def test_non_mapping_config_is_rejected() -> None:
    with pytest.raises(TrustConfigError, match="expected a mapping"):
        validate_and_normalize_config([1, 2, 3])  # type: ignore[arg-type]


def test_yaml_tier_actions_become_decisions_and_explain_works(tmp_path: Path) -> None:
    path = tmp_path / "gate.yaml"
    path.write_text("tier_actions:\n  review: defer\n  monitor: Review\n")
    config = load_config(path)
    assert config.tier_actions[1] is Decision.DEFER
    assert config.tier_actions[2] is Decision.REVIEW
    gate = CompositeTrustGate(InputVector(0.45, 0.55, 0.5), config)
    assert gate.explain()["risk_assessment"]["tier_action"] == "defer"


def test_environment_overrides_merge_onto_base(tmp_path: Path) -> None:
    path = tmp_path / "gate.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "trust_floor": 0.55,
                "environments": {"production": {"trust_floor": 0.7, "monitor": {"min_samples": 5}}},
            }
        )
    )
    base = load_config(path)
    prod = load_config(path, environment="production")
    assert base.trust_floor == 0.55
    assert prod.trust_floor == 0.7
    assert prod.monitor.min_samples == 5
    assert prod.monitor.window_seconds == base.monitor.window_seconds
    assert prod.environment == "production"
    assert prod.config_hash != base.config_hash
    with pytest.raises(TrustConfigError, match="unknown environment"):
        load_config(path, environment="moon")


def test_embedded_environments(config: TrustConfig) -> None:
    assert validate_and_normalize_config({}, environment="development").trust_floor == 0.5
    assert validate_and_normalize_config({}, environment="production").trust_floor == 0.65


def test_environment_section_rejects_unknown_keys() -> None:
    with pytest.raises(TrustConfigError, match=r"environments\.staging\.florr"):
        validate_and_normalize_config(
            {"environments": {"staging": {"florr": 1}}}, environment="staging"
        )


def test_config_path_and_environment_from_env_vars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "env.yaml"
    path.write_text("trust_floor: 0.42\nenvironments:\n  staging:\n    entropy_threshold: 0.9\n")
    monkeypatch.setenv(CONFIG_ENV_VAR, str(path))
    monkeypatch.setenv(ENVIRONMENT_ENV_VAR, "staging")
    config = load_config()
    assert (config.trust_floor, config.entropy_threshold, config.environment) == (
        0.42,
        0.9,
        "staging",
    )


def test_without_file_the_embedded_defaults_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONFIG_ENV_VAR, raising=False)
    monkeypatch.delenv(ENVIRONMENT_ENV_VAR, raising=False)
    assert load_config() == default_config()


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("weights: [unclosed", "malformed YAML"),
        ("- just\n- a list\n", "top level must be a mapping"),
        ("trust_floor: !!python/object:os.system ls\n", "malformed YAML"),
    ],
)
def test_malformed_files_give_typed_errors(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(TrustConfigError, match=match):
        load_config(path)


def test_missing_binary_and_huge_files(tmp_path: Path) -> None:
    with pytest.raises(TrustConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(TrustConfigError, match="cannot read"):
        load_config(binary)
    huge = tmp_path / "huge.yaml"
    huge.write_text("# " + "x" * (1 << 20) + "\n")
    with pytest.raises(TrustConfigError, match="larger than"):
        load_config(huge)


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_config(path) == default_config()


def test_config_is_immutable(config: TrustConfig) -> None:
    with pytest.raises(AttributeError):
        config.trust_floor = 0.1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del config.weights


def test_config_hash_is_stable_across_processes(config: TrustConfig) -> None:
    code = "from resontinex.trust import default_config; print(default_config().config_hash)"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == config.config_hash
    assert len(config.config_hash) == 12
    assert int(config.config_hash, 16) >= 0


def test_config_hash_tracks_content() -> None:
    a = validate_and_normalize_config({"trust_floor": 0.61})
    b = validate_and_normalize_config({"trust_floor": 0.61})
    c = validate_and_normalize_config({"trust_floor": 0.62})
    assert a.config_hash == b.config_hash != c.config_hash


def test_hot_tuple_matches_fields(config: TrustConfig) -> None:
    assert config.hot[:3] == config.weights
    assert config.hot[3:6] == config.tier_bounds[:3]
    assert config.as_dict()["tier_actions"]["block"] == "abort"
    assert config.weight_of("epistemic_risk") == 0.35
