"""Integration tests run against the installed packages (`make install`), never against src/ paths."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

CLI = shutil.which("resontinex", path=str(Path(sys.executable).parent))


@pytest.fixture
def run_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the installed `resontinex` console script and capture its output."""
    if CLI is None:
        pytest.fail(
            "the `resontinex` console script is not installed in this venv (run `make install`)"
        )

    def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=timeout)

    return run
