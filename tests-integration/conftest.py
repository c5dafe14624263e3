"""Integration tests run against the installed packages (`make install`), never against src/ paths.

The tiny local models are trained once and cached under `.cache/models/` in the repo (ignored by
git), so a second run of the suite starts in seconds. Two models with different seeds stand in
for "the model we deployed" and "the model that replaced it".
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from cert.trajectory import TinyModelSpec, build_tiny_model
from fusion_ops.governance import EnergyGovernor
from fusion_ops.runtime_router import RuntimeRouter
from hbt_core import AuditLog, generate_key, load_private_key
from resontinex.pipeline import GovernedPipeline, LocalModelBackend, ModelWorker
from resontinex.trust import TrustMonitor

CLI = shutil.which("resontinex", path=str(Path(sys.executable).parent))
CACHE = Path(__file__).resolve().parent.parent / ".cache" / "models"
SPEC = TinyModelSpec(n_positions=2048, steps=150)  # benchmarks/bench_service.py uses the same


@pytest.fixture
def run_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the installed `resontinex` console script and capture its output."""
    if CLI is None:
        pytest.fail(
            "the `resontinex` console script is not installed in this venv (run `make install`)"
        )

    def run(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=timeout)

    return run


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """One run of `resontinex demo --out DIR` (minutes), shared by the tests that read it."""
    if CLI is None:
        pytest.fail("the `resontinex` console script is not installed in this venv")
    out = tmp_path_factory.mktemp("demo")
    proc = subprocess.run(
        [CLI, "demo", "--out", str(out)], capture_output=True, text=True, timeout=900
    )
    return proc, out


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The serving model: a tiny GPT-2 trained here on standard-library docstrings."""
    return build_tiny_model(CACHE / "seed0", SPEC)


@pytest.fixture(scope="session")
def other_model_dir() -> Path:
    """Same recipe, another seed: the model that silently replaces the serving one."""
    return build_tiny_model(
        CACHE / "model-seed1", TinyModelSpec(n_positions=2048, steps=150, seed=1)
    )


@pytest.fixture(scope="session")
def local_model(model_dir: Path) -> Iterator[ModelWorker]:
    """The serving model's worker, shared by the session (one owner of the loaded weights)."""
    with ModelWorker(model_dir, registry=CollectorRegistry()) as worker:
        yield worker


@pytest.fixture
def build(tmp_path: Path, local_model: ModelWorker) -> Callable[..., GovernedPipeline]:
    """A pipeline on the shared local model, with fresh state in tmp_path for each test."""
    key_path = tmp_path / "signing-key.pem"
    generate_key(key_path)

    def make(**overrides: Any) -> GovernedPipeline:
        registry = CollectorRegistry()
        parts: dict[str, Any] = {
            "backend": LocalModelBackend(local_model),
            "router": RuntimeRouter(),
            "governor": EnergyGovernor(overrides.pop("budget", 1_000_000.0), registry=registry),
            "trust": TrustMonitor(config=overrides.pop("trust_config", None), registry=registry),
            "audit_log": AuditLog(
                tmp_path / "audit.sqlite", signing_key=load_private_key(key_path)
            ),
        }
        parts.update(overrides)
        return GovernedPipeline(**parts)

    return make
