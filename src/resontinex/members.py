"""The member distributions of the monorepo, in the order the umbrella presents them."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version


@dataclass(frozen=True)
class Member:
    """One member distribution: its PyPI name, its import path and the umbrella extra holding it."""

    dist: str
    import_name: str
    extra: str


MEMBERS: tuple[Member, ...] = (
    Member("resontinex-trust", "resontinex.trust", "trust"),
    Member("fusion-ops", "fusion_ops", "fusion"),
    Member("t1-deploy", "t1_deploy", "deploy"),
    Member("cert-runtime", "cert.runtime", "cert"),
    Member("cert-trajectory", "cert.trajectory", "cert"),
    Member("cert-coordination", "cert.coordination", "cert"),
    Member("hbt-core", "hbt_core", "hbt"),
)


def installed_version(dist: str) -> str | None:
    """The installed version of `dist`, or None when it is not installed."""
    try:
        return version(dist)
    except PackageNotFoundError:
        return None
