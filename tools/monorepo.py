"""What the repo tooling knows about the monorepo: its member packages, read from their pyproject files.

Shared by tools/check_isolation.py and tools/check_umbrella.py so that both agree on what a
member is, which import names it owns and which siblings it declares.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
NAMESPACE_ROOTS = ("resontinex", "cert")
_VERSION_RE = re.compile(r"""^__version__\s*=\s*["']([^"']+)["']""", re.MULTILINE)


@dataclass
class Package:
    """One member distribution under packages/."""

    dist: str
    path: Path
    version: str
    dependencies: list[Requirement]
    extras: dict[str, list[Requirement]]
    import_names: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return canonicalize_name(self.dist)

    def requirements(self, extras: Iterable[str] = ()) -> list[Requirement]:
        """Base dependencies plus those of the named extras."""
        reqs = list(self.dependencies)
        for extra in extras:
            reqs.extend(self.extras.get(extra, []))
        return reqs

    def declared_keys(self) -> set[str]:
        """Every distribution named in dependencies or any extra (canonical names)."""
        reqs = self.requirements(self.extras)
        return {canonicalize_name(r.name) for r in reqs}


def _import_names(src: Path) -> list[str]:
    """Top-level import names a src/ tree provides; a namespace root contributes `root.child`."""
    names: list[str] = []
    for entry in sorted(
        p for p in src.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
    ):
        if entry.name in NAMESPACE_ROOTS and not (entry / "__init__.py").exists():
            names += [
                f"{entry.name}.{c.name}"
                for c in sorted(entry.iterdir())
                if (c / "__init__.py").exists()
            ]
        elif (entry / "__init__.py").exists():
            names.append(entry.name)
    return names


def load_package(path: Path) -> Package:
    """Read one member's pyproject.toml and its version file."""
    meta = tomllib.loads((path / "pyproject.toml").read_text())
    project = meta["project"]
    version_file = path / meta["tool"]["hatch"]["version"]["path"]
    match = _VERSION_RE.search(version_file.read_text())
    if match is None:
        raise ValueError(f"{version_file}: no __version__ = '...' line")
    return Package(
        dist=project["name"],
        path=path,
        version=match.group(1),
        dependencies=[Requirement(r) for r in project.get("dependencies", [])],
        extras={
            k: [Requirement(r) for r in v]
            for k, v in project.get("optional-dependencies", {}).items()
        },
        import_names=_import_names(path / "src") if (path / "src").is_dir() else [],
    )


def load_packages(repo: Path = REPO) -> dict[str, Package]:
    """Every member under repo/packages, keyed by canonical distribution name."""
    pkgs = [load_package(p.parent) for p in sorted((repo / "packages").glob("*/pyproject.toml"))]
    return {p.key: p for p in pkgs}


def owner_of(module: str, packages: dict[str, Package]) -> Package | None:
    """The member whose import name is the longest prefix of `module`, if any."""
    best: tuple[int, Package] | None = None
    for pkg in packages.values():
        for name in pkg.import_names:
            if (module == name or module.startswith(name + ".")) and (
                best is None or len(name) > best[0]
            ):
                best = (len(name), pkg)
    return best[1] if best else None
