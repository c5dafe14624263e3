"""Repo-wide pytest fixtures: a throw-away PostgreSQL cluster for tests marked ``postgres``.

It lives at the repo root so that every member's suite (run from the root, where pytest finds
this file) shares one implementation without depending on another member. pytest-postgresql
was tried first: it runs ``pg_ctl`` as the current user inside pytest's temp tree, and as root
(CI) PostgreSQL refuses to start while that tree is unreadable by any other user. Here the
cluster lives in its own temp dir, owned by the ``postgres`` user and run through ``runuser``
when we are root. ``make iso`` deselects these tests (``-m "not postgres"``): an isolated
package copy has no repo root, and no server.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_BINDIR_ENV = "RESONTINEX_PG_BINDIR"


def _pg_bindir() -> Path:
    """``$RESONTINEX_PG_BINDIR``, else the newest Debian install under /usr/lib/postgresql."""
    if os.environ.get(PG_BINDIR_ENV):
        return Path(os.environ[PG_BINDIR_ENV])
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else -1,
    )
    if not found:
        pytest.fail(
            "PostgreSQL server binaries not found (pg_ctl under /usr/lib/postgresql/*/bin or "
            f"${PG_BINDIR_ENV}); `make install` installs Debian's postgresql, or deselect these "
            "tests with -m 'not postgres'"
        )
    return found[-1].parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class PostgresServer:
    """A running throw-away cluster: password auth over TCP on 127.0.0.1."""

    host: str
    port: int
    user: str
    password: str
    socket_dir: Path

    def url(self, dbname: str = "postgres", password: str | None = None) -> str:
        pw = self.password if password is None else password
        return f"postgresql://{self.user}:{pw}@{self.host}:{self.port}/{dbname}"


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: drop to the ``postgres`` user (Debian's package)."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _pg(*cmd: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        _as_postgres(list(cmd)),
        capture_output=True,
        env={**os.environ, "LC_ALL": "C.UTF-8"},
        check=False,
    )


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[PostgresServer]:
    """initdb + pg_ctl start in a temp dir; stopped and removed at the end of the session."""
    bindir = _pg_bindir()
    base = Path(tempfile.mkdtemp(prefix="resontinex-pg-"))
    data, log, pwfile = base / "data", base / "server.log", base / "pwfile"
    password = secrets.token_hex(16)
    pwfile.write_text(password + "\n")
    pwfile.chmod(0o600)
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        for path in (base, pwfile):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    try:
        init = _pg(
            str(bindir / "initdb"),
            *("-D", str(data), "-U", "postgres", f"--pwfile={pwfile}", "--no-sync"),
            *("--auth-local=trust", "--auth-host=scram-sha-256"),
        )
        pwfile.unlink()
        if init.returncode:
            pytest.fail(f"initdb failed: {init.stderr.decode(errors='replace')[-2000:]}")
        for _attempt in range(3):  # a port picked here may be taken before the server binds
            port = _free_port()
            opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
            pg_ctl = str(bindir / "pg_ctl")
            if _pg(pg_ctl, "start", "-w", "-D", str(data), "-l", str(log), "-o", opts).returncode:
                continue
            break
        else:
            pytest.fail(f"PostgreSQL did not start: {log.read_text(errors='replace')[-2000:]}")
        yield PostgresServer("127.0.0.1", port, "postgres", password, base)
    finally:
        if (data / "postmaster.pid").exists():
            _pg(str(bindir / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(data))
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgresql_url(postgresql_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database on the session's server, dropped after the test."""
    import psycopg

    name = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(postgresql_server.url(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield postgresql_server.url(name)
    with psycopg.connect(postgresql_server.url(), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
