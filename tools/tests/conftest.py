"""Fixtures for the repo tooling's tests: the tools as modules, and throwaway copies of the repo."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1]
REPO = TOOLS.parent
sys.path.insert(0, str(TOOLS))


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """The root pyproject and every member's pyproject, src/ and tests/, copied to a scratch tree."""
    dest = tmp_path / "repo"
    dest.mkdir()
    shutil.copy2(REPO / "pyproject.toml", dest / "pyproject.toml")
    ignore = shutil.ignore_patterns(
        "__pycache__", "*.npz", "*.safetensors", "*.bin", "*.json", "*.png"
    )
    for pkg in sorted((REPO / "packages").iterdir()):
        if not (pkg / "pyproject.toml").exists():
            continue
        for part in ("pyproject.toml", "src", "tests"):
            source = pkg / part
            target = dest / "packages" / pkg.name / part
            if source.is_dir():
                shutil.copytree(source, target, ignore=ignore)
            elif source.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
    return dest
