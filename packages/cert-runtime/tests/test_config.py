"""RuntimeSettings from the environment; errors name the variable and the value."""

from __future__ import annotations

import math
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cert.runtime.config import ENV_VARS, RuntimeSettings, resolve_device
from cert.runtime.errors import InvalidInputError


def test_defaults_without_environment() -> None:
    settings = RuntimeSettings.from_env({})
    assert settings == RuntimeSettings()
    assert settings.to_dict() == {
        "log_level": "INFO",
        "log_format": "json",
        "metrics_enabled": True,
        "device": "auto",
        "max_memory_gb": None,
        "request_timeout_s": 60.0,
        "log_file": None,
    }


def test_every_variable_is_read_and_normalised() -> None:
    env = {
        "CERT_LOG_LEVEL": " debug ",
        "CERT_LOG_FORMAT": "TEXT",
        "CERT_LOG_FILE": "/var/log/cert.log",
        "CERT_METRICS_ENABLED": "off",
        "CERT_DEVICE": "CUDA:1",
        "CERT_MAX_MEMORY_GB": "7.5",
        "CERT_REQUEST_TIMEOUT_S": "12",
    }
    s = RuntimeSettings.from_env(env)
    assert (s.log_level, s.log_format, s.log_file) == ("DEBUG", "text", "/var/log/cert.log")
    assert s.metrics_enabled is False
    assert (s.device, s.max_memory_gb, s.request_timeout_s) == ("cuda:1", 7.5, 12.0)
    assert set(ENV_VARS.values()) == set(env)


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERT_DEVICE", "cpu")
    monkeypatch.setenv("CERT_MAX_MEMORY_GB", "")  # empty means unset
    settings = RuntimeSettings.from_env()
    assert settings.device == "cpu"
    assert settings.max_memory_gb is None


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("CERT_LOG_LEVEL", "LOUD"),
        ("CERT_LOG_FORMAT", "xml"),
        ("CERT_METRICS_ENABLED", "maybe"),
        ("CERT_DEVICE", "tpu"),
        ("CERT_DEVICE", "cuda:x"),
        ("CERT_MAX_MEMORY_GB", "-1"),
        ("CERT_MAX_MEMORY_GB", "nan"),
        ("CERT_MAX_MEMORY_GB", "inf"),
        ("CERT_MAX_MEMORY_GB", "8GB"),
        ("CERT_REQUEST_TIMEOUT_S", "0"),
        ("CERT_REQUEST_TIMEOUT_S", "1e400"),
        ("CERT_LOG_FILE", "bad\x00path"),
    ],
)
def test_bad_values_name_variable_and_value(variable: str, raw: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        RuntimeSettings.from_env({variable: raw})
    assert f"{variable}={raw!r}" in str(info.value)
    assert info.value.context == {"field": variable, "value": raw}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"log_level": 10}, "log_level"),
        ({"metrics_enabled": "yes please"}, "metrics_enabled"),
        ({"metrics_enabled": 1}, "metrics_enabled"),
        ({"request_timeout_s": True}, "request_timeout_s"),
        ({"request_timeout_s": math.nan}, "request_timeout_s"),
        ({"max_memory_gb": -2.0}, "max_memory_gb"),
        ({"device": None}, "device"),
        ({"log_file": ""}, "log_file"),
    ],
)
def test_direct_construction_is_validated_too(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError, match=f"^{field}="):
        RuntimeSettings(**kwargs)


def test_settings_are_frozen() -> None:
    settings = RuntimeSettings()
    with pytest.raises(AttributeError):
        settings.device = "cpu"  # type: ignore[misc]


@given(st.floats(min_value=1e-6, max_value=1e6))
def test_positive_numbers_round_trip(x: float) -> None:
    assert RuntimeSettings.from_env({"CERT_REQUEST_TIMEOUT_S": repr(x)}).request_timeout_s == x


@given(st.sampled_from(["1", "true", "YES", " on ", "0", "False", "no", "OFF"]))
def test_boolean_spellings(raw: str) -> None:
    expected = raw.strip().lower() in ("1", "true", "yes", "on")
    assert RuntimeSettings.from_env({"CERT_METRICS_ENABLED": raw}).metrics_enabled is expected


def test_resolve_device_explicit_values_pass_through() -> None:
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("CUDA:0") == "cuda:0"
    with pytest.raises(InvalidInputError, match="device='gpu'"):
        resolve_device("gpu")


def test_resolve_device_auto_matches_torch_or_cpu() -> None:
    try:
        import torch
    except ImportError:
        assert resolve_device() == "cpu"
    else:
        assert resolve_device() == ("cuda" if torch.cuda.is_available() else "cpu")


def test_resolve_device_auto_without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    assert resolve_device("auto") == "cpu"


def test_importing_the_package_does_not_import_torch() -> None:
    import subprocess

    code = "import sys, cert.runtime; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@given(st.dictionaries(st.sampled_from(sorted(ENV_VARS.values())), st.text(max_size=40)))
def test_arbitrary_environments_either_load_or_raise_invalid_input(env: dict[str, str]) -> None:
    error: InvalidInputError | None = None
    try:
        settings = RuntimeSettings.from_env(env)
    except InvalidInputError as exc:
        error = exc
    if error is not None:
        assert error.context["field"] in env
        assert error.context["value"] == env[error.context["field"]]
    else:
        assert RuntimeSettings(**settings.to_dict()) == settings
