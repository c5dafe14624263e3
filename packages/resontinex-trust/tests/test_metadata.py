"""The installed distribution and the importable package agree on name and version."""

from importlib.metadata import distribution
from pathlib import Path

import resontinex.trust
from resontinex.trust.__about__ import __version__


def test_installed_version_matches_version_file() -> None:
    assert distribution("resontinex-trust").version == __version__ == resontinex.trust.__version__


def test_package_ships_typed_marker() -> None:
    assert Path(resontinex.trust.__file__).with_name("py.typed").is_file()
