"""The installed distribution and the importable package agree on name and version."""

from importlib.metadata import distribution
from pathlib import Path

import cert.trajectory
from cert.trajectory.__about__ import __version__


def test_installed_version_matches_version_file() -> None:
    assert distribution("cert-trajectory").version == __version__ == cert.trajectory.__version__


def test_package_ships_typed_marker() -> None:
    assert Path(cert.trajectory.__file__).with_name("py.typed").is_file()
