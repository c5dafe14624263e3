"""A throw-away PostgreSQL cluster for tests and benchmarks (Debian's ``postgresql`` binaries).

``initdb`` + ``pg_ctl`` in a fresh temp dir, listening on 127.0.0.1 on a free port (password
auth, a random password) and on a unix socket in that dir; removed afterwards. One
implementation for the whole repo: the root ``conftest.py`` builds its fixtures on it and
benchmarks load it by path, so no member depends on another to get a server.

Why not pytest-postgresql: it runs ``pg_ctl`` as the current user inside pytest's temp tree
(mode 0700), and as root (CI) PostgreSQL refuses to run at all. Here, as root, the temp dir is
given to the ``postgres`` system user and every binary runs through ``runuser``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

PG_BINDIR_ENV = "RESONTINEX_PG_BINDIR"
_START_ATTEMPTS = 3  # a free port picked here may be taken before the server binds it


class PgClusterError(RuntimeError):
    """The cluster could not be made or started; the message carries the tool's output."""


def find_bindir() -> Path | None:
    """``$RESONTINEX_PG_BINDIR``, else the newest Debian install under /usr/lib/postgresql,
    else wherever ``initdb`` is on PATH; None when PostgreSQL is not installed."""
    if os.environ.get(PG_BINDIR_ENV):
        return Path(os.environ[PG_BINDIR_ENV])
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else -1,
    )
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresCluster:
    """One cluster in its own temp dir. :meth:`crash` stops it as a power cut or ``kill -9``
    of the postmaster would (no checkpoint), so the next :meth:`start` runs WAL recovery; the
    port and password stay the same across restarts, so URLs handed out stay valid.

    ``fsync=False`` is for test speed; benchmarks that claim durable commits keep the default.
    """

    host = "127.0.0.1"
    user = "postgres"

    def __init__(self, *, fsync: bool = True, bindir: Path | None = None) -> None:
        found = bindir or find_bindir()
        if found is None or not (found / "initdb").exists():
            raise PgClusterError(
                f"PostgreSQL server binaries not found (initdb and pg_ctl under "
                f"/usr/lib/postgresql/*/bin, on PATH, or in ${PG_BINDIR_ENV}): "
                "install Debian's postgresql package"
            )
        self._bin = found
        self._fsync = fsync
        self._as_postgres = os.geteuid() == 0  # PostgreSQL refuses to run as root
        self.password = secrets.token_hex(16)
        self.port = 0
        self.root = Path(tempfile.mkdtemp(prefix="resontinex-pg-"))
        self._data = self.root / "data"
        self.log = self.root / "server.log"
        try:
            self._initdb()
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    def url(self, dbname: str = "postgres", password: str | None = None) -> str:
        """``postgresql://postgres:PW@127.0.0.1:PORT/dbname`` (another password to test refusals)."""
        pw = self.password if password is None else password
        return f"postgresql://{self.user}:{pw}@{self.host}:{self.port}/{dbname}"

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_postgres else []
        return subprocess.run(
            [*prefix, str(self._bin / tool), *args],
            capture_output=True,
            text=True,
            errors="replace",
            env={**os.environ, "LC_ALL": "C.UTF-8"},
            check=False,
        )

    def _initdb(self) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if self._as_postgres:
            owner = pwd.getpwnam("postgres")
            for path in (self.root, pwfile):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        try:
            done = self._run(
                "initdb",
                *("-D", str(self._data), "-U", self.user, f"--pwfile={pwfile}"),
                *("--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync"),
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode:
            raise PgClusterError(f"initdb failed: {done.stderr[-2000:]}")

    def start(self) -> None:
        """Start (or restart after :meth:`crash`) and wait until it accepts connections."""
        attempts = 1 if self.port else _START_ATTEMPTS
        for _ in range(attempts):
            port = self.port or _free_port()
            opts = f"-p {port} -k {self.root} -c listen_addresses={self.host}"
            if not self._fsync:
                opts += " -c fsync=off"
            started = self._run(
                "pg_ctl",
                *("start", "-w", "-t", "60", "-D", str(self._data), "-l", str(self.log)),
                *("-o", opts),
            )
            if started.returncode == 0:
                self.port = port
                return
        log = self.log.read_text(errors="replace") if self.log.exists() else started.stderr
        raise PgClusterError(f"PostgreSQL did not start: {log[-2000:]}")

    def crash(self) -> None:
        """Stop without a checkpoint (``pg_ctl -m immediate``), as a power cut would."""
        self._stop("immediate")

    def _stop(self, mode: str) -> None:
        if (self._data / "postmaster.pid").exists():
            self._run("pg_ctl", "stop", "-w", "-m", mode, "-D", str(self._data))

    def remove(self) -> None:
        """Stop the server (if running) and delete everything it wrote."""
        self._stop("fast")
        shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self, name: str) -> str:
        """A fresh empty database (dropped first if a previous run left it); its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def running_cluster(*, fsync: bool = True) -> Iterator[PostgresCluster]:
    """A started cluster, stopped and removed on exit (also when starting fails)."""
    cluster = PostgresCluster(fsync=fsync)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()
