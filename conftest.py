"""Repo-wide pytest fixtures: a throw-away PostgreSQL cluster for tests marked ``postgres``.

It lives at the repo root so that every member's suite (run from the root, where pytest finds
this file) shares one implementation, ``tools/pg_cluster.py``, without depending on another
member. Package tests use these fixtures by name only and never import this file or tools/:
``make iso`` runs an isolated package copy without the repo, and deselects these tests
(``-m "not postgres"``).
"""

from __future__ import annotations

import importlib.util
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # the same module, as the type checker sees it
    from tools.pg_cluster import PostgresCluster


def _load_pg_cluster() -> ModuleType:
    """tools/ is not a package: load the cluster module by path, once per process."""
    name = "resontinex_tools_pg_cluster"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, Path(__file__).resolve().parent / "tools" / "pg_cluster.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


pg_cluster = _load_pg_cluster()


def _cluster(*, fsync: bool) -> Iterator[PostgresCluster]:
    """A started cluster, or a test failure that says why (never a silent skip)."""
    try:
        with pg_cluster.running_cluster(fsync=fsync) as cluster:
            yield cluster
    except pg_cluster.PgClusterError as exc:
        pytest.fail(f"{exc}; `make install` installs it, or deselect with -m 'not postgres'")


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[PostgresCluster]:
    """One cluster for the session (fsync off: speed); stopped and removed at the end.
    ``.url(dbname, password=...)`` builds URLs, e.g. with a wrong password."""
    yield from _cluster(fsync=False)


@pytest.fixture
def postgresql_url(postgresql_server: PostgresCluster) -> Iterator[str]:
    """A fresh, empty database on the session's cluster, dropped after the test."""
    name = f"t_{secrets.token_hex(6)}"
    yield postgresql_server.create_database(name)
    postgresql_server.drop_database(name)


@pytest.fixture
def postgresql_cluster() -> Iterator[PostgresCluster]:
    """A cluster of the test's own, which it may ``crash()`` (``pg_ctl -m immediate``) and
    ``start()`` again; fsync stays on, since such tests are about durability."""
    yield from _cluster(fsync=True)
