"""The installed distribution and the importable package agree on name and version."""

from importlib.metadata import distribution
from pathlib import Path

import cert.coordination
from cert.coordination.__about__ import __version__


def test_installed_version_matches_version_file() -> None:
    assert distribution("cert-coordination").version == __version__ == cert.coordination.__version__


def test_package_ships_typed_marker() -> None:
    assert Path(cert.coordination.__file__).with_name("py.typed").is_file()
