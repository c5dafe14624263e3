"""CUDA out-of-memory fallback, exercised with an injected OOM (no GPU on these machines)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from cert.runtime.health import HealthStatus
from cert.trajectory import DeviceOutOfMemoryError, HamiltonianMonitor, TrajectoryConfig

CONFIG = TrajectoryConfig(max_mean_entropy=2.0, max_new_tokens=8)


def test_oom_falls_back_to_cpu_once_keeps_the_copy_and_counts_it(
    make_fixed: Callable[..., tuple[Any, Any]], fake_cuda_cls: type
) -> None:
    model, tokenizer = make_fixed(cls=fake_cuda_cls)
    registry = CollectorRegistry()
    monitor = HamiltonianMonitor(
        model=model, tokenizer=tokenizer, config=CONFIG, device="cuda", registry=registry,
        preload=True,
    )  # fmt: skip
    assert monitor.device == "cuda"
    assert model.moves == ["cuda"]

    first = monitor.analyze("t1")
    assert first.cpu_fallback
    assert first.device == "cpu"
    assert [t.token_id for t in first.tokens] == [2, 4, 0]
    assert model.moves == ["cuda", "cpu"]

    second = monitor.analyze("t2")
    assert second.cpu_fallback
    assert second.device == "cpu"
    assert model.moves == ["cuda", "cpu"]  # kept on CPU: no reload or move per request
    assert registry.get_sample_value("cert_trajectory_cpu_fallbacks_total") == 1.0
    report = monitor.health_check()
    assert report.status == HealthStatus.DEGRADED


def test_oom_without_fallback_is_a_typed_recoverable_error(
    make_fixed: Callable[..., tuple[Any, Any]], fake_cuda_cls: type
) -> None:
    model, tokenizer = make_fixed(cls=fake_cuda_cls)
    monitor = HamiltonianMonitor(
        model=model, tokenizer=tokenizer, config=CONFIG, device="cuda", cpu_fallback=False,
        preload=True,
    )  # fmt: skip
    with pytest.raises(DeviceOutOfMemoryError) as info:
        monitor.analyze("t1")
    assert info.value.recoverable
    assert model.moves == ["cuda"]
