"""The shared throw-away PostgreSQL cluster: refusals that need no server. Starting, crashing
and restarting a real cluster is exercised by the members' ``postgres`` tests through the root
conftest's fixtures (``make test-packages`` installs the server; this job may not have it)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pg_cluster import PG_BINDIR_ENV, PgClusterError, PostgresCluster, find_bindir


@pytest.fixture
def scratch(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The temp root the cluster makes its dir in, with a fake bindir; outside pytest's 0700
    tree, because as root the tool runs initdb as the postgres user."""
    with tempfile.TemporaryDirectory() as name:
        root = Path(name)
        root.chmod(0o755)
        (root / "bin").mkdir(mode=0o755)
        monkeypatch.setattr(tempfile, "tempdir", name)
        yield root


def test_missing_binaries_are_a_typed_error_and_leave_nothing(
    scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PG_BINDIR_ENV, str(scratch / "bin"))
    assert find_bindir() == scratch / "bin"
    with pytest.raises(PgClusterError, match=PG_BINDIR_ENV):
        PostgresCluster()
    assert [p.name for p in scratch.iterdir()] == ["bin"]


def test_a_failing_initdb_is_a_typed_error_with_its_output_and_leaves_nothing(
    scratch: Path,
) -> None:
    initdb = scratch / "bin" / "initdb"
    initdb.write_text("#!/bin/sh\necho 'initdb: could not create directory' >&2\nexit 1\n")
    initdb.chmod(0o755)
    with pytest.raises(PgClusterError, match="initdb failed: initdb: could not create directory"):
        PostgresCluster(bindir=scratch / "bin")
    assert [p.name for p in scratch.iterdir()] == ["bin"]
