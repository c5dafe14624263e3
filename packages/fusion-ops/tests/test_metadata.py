"""The installed distribution and the importable package agree on name and version."""

from importlib.metadata import distribution
from pathlib import Path

import fusion_ops
from fusion_ops.__about__ import __version__


def test_installed_version_matches_version_file() -> None:
    assert distribution("fusion-ops").version == __version__ == fusion_ops.__version__


def test_package_ships_typed_marker() -> None:
    assert Path(fusion_ops.__file__).with_name("py.typed").is_file()
