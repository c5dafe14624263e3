"""The installed distribution and the importable package agree on name and version."""

from importlib.metadata import distribution
from pathlib import Path

import cert.runtime
from cert.runtime.__about__ import __version__


def test_installed_version_matches_version_file() -> None:
    assert distribution("cert-runtime").version == __version__ == cert.runtime.__version__


def test_package_ships_typed_marker() -> None:
    assert Path(cert.runtime.__file__).with_name("py.typed").is_file()
