"""The installed distribution and the importable package agree on name and version."""

from importlib.metadata import distribution
from pathlib import Path

import t1_deploy
from t1_deploy.__about__ import __version__


def test_installed_version_matches_version_file() -> None:
    assert distribution("t1-deploy").version == __version__ == t1_deploy.__version__


def test_package_ships_typed_marker() -> None:
    assert Path(t1_deploy.__file__).with_name("py.typed").is_file()
