"""A throw-away PostgreSQL cluster (Debian's ``postgresql`` package): ``initdb`` + ``pg_ctl`` in
a temporary directory, listening on 127.0.0.1 on a free port, password authentication over TCP,
removed afterwards. Used by the tests' ``postgres_url`` fixture and by the ledger benchmark.

PostgreSQL refuses to run as root; as root the cluster runs as the ``postgres`` system user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

PASSWORD = "throwaway-test-password"


def find_bindir() -> Path | None:
    """The directory holding initdb and pg_ctl, or None when PostgreSQL is not installed."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    """A cluster in a temporary directory; :meth:`crash` stops it the way a power cut or
    ``kill -9`` of the postmaster would (no checkpoint: WAL recovery at the next start)."""

    def __init__(self) -> None:
        bindir = find_bindir()
        if bindir is None:
            raise FileNotFoundError("PostgreSQL is not installed (no initdb)")
        self._bin = bindir
        self.root = Path(tempfile.mkdtemp(prefix="fusion-pg-"))
        self._prefix: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._prefix = ["runuser", "-u", "postgres", "--"]
        self._data, self._port = self.root / "data", _free_port()
        self.url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{self._port}/postgres"
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD)
        if self._prefix:
            shutil.chown(pwfile, "postgres")
        self._run(
            "initdb",
            "-D",
            str(self._data),
            "-U",
            "postgres",
            f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
            "--no-sync",
            "-E",
            "UTF8",
        )

    def _run(self, tool: str, *args: str, check: bool = True) -> None:
        subprocess.run(
            [*self._prefix, str(self._bin / tool), *args],
            check=check,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self._port} -k {self.root} -c max_connections=50"
        self._run(
            "pg_ctl",
            "-D",
            str(self._data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def crash(self) -> None:
        self._run("pg_ctl", "-D", str(self._data), "-m", "immediate", "-w", "stop", check=False)

    def remove(self) -> None:
        self.crash()
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def running_cluster() -> Iterator[Cluster]:
    cluster = Cluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[str]:
    """Yield ``postgresql://postgres:PASSWORD@127.0.0.1:PORT/postgres``."""
    with running_cluster() as cluster:
        yield cluster.url
