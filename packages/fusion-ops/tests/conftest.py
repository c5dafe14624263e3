"""Shared fixtures: report builders, a copy of the embedded router config, the repo root, a fake
Messages API server. PostgreSQL tests use the repo root conftest's fixtures by name
(``postgresql_url``, ``postgresql_server``, ``postgresql_cluster``); nothing here imports them, so
an isolated copy of these tests (``make iso``, ``-m "not postgres"``) still collects."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from fusion_ops.report import BudgetReport, Sample, ScenarioSamples
from fusion_ops.runtime_router import embedded_config_dir

SHA = "0" * 64


def _side(tokens: Sequence[float], latencies: Sequence[float]) -> tuple[Sample, ...]:
    return tuple(
        Sample(
            ok=True,
            input_tokens=int(t) // 2,
            output_tokens=int(t) - int(t) // 2,
            latency_ms=float(lat),
        )
        for t, lat in zip(tokens, latencies, strict=True)
    )


def build_report(
    per_scenario: Sequence[tuple[Sequence[float], Sequence[float]]],
    latency: tuple[Sequence[float], Sequence[float]] | None = None,
) -> BudgetReport:
    """A report from token totals per scenario: [(baseline_tokens, candidate_tokens), ...]."""
    scenarios = []
    for i, (base, cand) in enumerate(per_scenario):
        base_lat = latency[0] if latency else [500.0] * len(base)
        cand_lat = latency[1] if latency else [500.0] * len(cand)
        scenarios.append(
            ScenarioSamples(
                f"s{i}", "data_operations", _side(base, base_lat), _side(cand, cand_lat)
            )
        )
    side = {"git_sha": None, "config_hash": SHA, "prompt_strategy": "plain"}
    meta = {
        "created_at": "2026-01-01T00:00:00+00:00",
        "model": "test",
        "tokenizer": "test",
        "runs_per_side": max(len(b) for b, _ in per_scenario),
        "baseline": dict(side),
        "candidate": dict(side),
    }
    return BudgetReport(metadata=meta, scenarios=tuple(scenarios))


@pytest.fixture
def make_report() -> Callable[..., BudgetReport]:
    return build_report


@pytest.fixture
def noisy_report() -> Callable[[float, int, int, float, int], BudgetReport]:
    """Simulated report: n runs per side; candidate costs (1 + shift) × baseline on average."""

    def make(shift: float, n: int, scenarios: int, cv: float, seed: int) -> BudgetReport:
        rng = np.random.default_rng(seed)
        rows = []
        for s in range(scenarios):
            prompt = 200 + 100 * s
            out_mean = 300.0
            sigma = np.sqrt(np.log1p(cv**2))
            base = prompt + out_mean * rng.lognormal(-(sigma**2) / 2, sigma, n)
            cand = (prompt + out_mean * rng.lognormal(-(sigma**2) / 2, sigma, n)) * (1 + shift)
            rows.append((np.round(base), np.round(cand)))
        return build_report(rows)

    return make


@pytest.fixture
def report_dict(make_report: Callable[..., BudgetReport]) -> dict[str, Any]:
    return make_report(
        [([100, 110, 90], [105, 115, 95]), ([200, 190, 210], [200, 205, 195])]
    ).to_json()


@pytest.fixture
def router_dir(tmp_path: Path) -> Path:
    """A writable copy of the embedded routing config."""
    target = tmp_path / "fusion"
    shutil.copytree(embedded_config_dir(), target)
    return target


@pytest.fixture
def repo_root() -> Path:
    """The monorepo root when these tests run from packages/fusion-ops/tests of a checkout.

    Skips elsewhere (the isolation check copies the tests to a scratch directory): only the
    in-repo run may read repo files such as configs/ and the workflow.
    """
    here = Path(__file__).resolve().parent
    root = here.parents[2] if len(here.parents) > 2 else here
    if (
        here == root / "packages" / "fusion-ops" / "tests"
        and (root / "configs" / "fusion").is_dir()
    ):
        return root
    pytest.skip("not running from the monorepo checkout")


def _load_helper(name: str) -> ModuleType:
    """tests/ is not a package (importlib mode): load a helper module by path."""
    path = Path(__file__).resolve().parent / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"fusion_ops_tests_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


fake_api = _load_helper("fake_messages_api")


@pytest.fixture
def messages_api() -> Iterator[Any]:
    """A live fake Anthropic Messages API on 127.0.0.1 (see fake_messages_api.py)."""
    with fake_api.FakeMessagesAPI() as api:
        yield api


@pytest.fixture
def reply() -> Any:
    """The fake server's ``Reply`` class (status, usage, text, delay_s)."""
    return fake_api.Reply
