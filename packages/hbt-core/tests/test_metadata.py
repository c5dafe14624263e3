"""The installed distribution and the importable package agree on name and version."""

from importlib.metadata import distribution
from pathlib import Path

import hbt_core
from hbt_core.__about__ import __version__


def test_installed_version_matches_version_file() -> None:
    assert distribution("hbt-core").version == __version__ == hbt_core.__version__


def test_package_ships_typed_marker() -> None:
    assert Path(hbt_core.__file__).with_name("py.typed").is_file()
