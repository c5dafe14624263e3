"""Markdown micro-overlays: parsing and robust loading with reason codes.

An overlay is a markdown file ``<name>.md`` with ``##`` sections; ``Core Directive`` is required.
Loading never lets one bad file take the router down: an empty, oversize, non-UTF-8, binary,
badly named or malformed file is skipped and reported as a :class:`LoadIssue` with a stable
``reason`` code.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "KNOWN_SECTIONS",
    "REASON_CODES",
    "LoadIssue",
    "Overlay",
    "load_overlays",
    "parse_overlay",
]

KNOWN_SECTIONS = (
    "Core Directive",
    "Response Framework",
    "Implementation Patterns",
    "Operational Emphasis",
    "Quality Gates",
    "Tone Adjustments",
)
REQUIRED_SECTION = "Core Directive"
REASON_CODES = (
    "empty",
    "oversize",
    "not_utf8",
    "binary",
    "invalid_name",
    "malformed",
    "unreadable",
    "overlay_unavailable",
)
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_HEADING = re.compile(r"^##\s+(\S.*?)\s*$")
_TITLE = re.compile(r"^#\s+(\S.*?)\s*$")


@dataclass(frozen=True)
class Overlay:
    name: str
    title: str
    sections: tuple[tuple[str, str], ...]
    sha256: str

    def section(self, title: str) -> str | None:
        for heading, body in self.sections:
            if heading.casefold() == title.casefold():
                return body
        return None

    def render(self) -> str:
        """The overlay as prompt text: its sections in file order."""
        parts = [f"## {heading}\n{body}" for heading, body in self.sections]
        return "\n\n".join(parts)


@dataclass(frozen=True)
class LoadIssue:
    """Why a file (or a routing reference) was skipped."""

    source: str
    overlay: str
    reason: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {
            "source": self.source,
            "overlay": self.overlay,
            "reason": self.reason,
            "detail": self.detail,
        }


class SkipFileError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def parse_overlay(name: str, text: str) -> Overlay:
    """Parse overlay markdown; raise ``ValueError`` naming what is wrong."""
    title = name
    sections: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading:
            sections.append((heading.group(1), []))
            continue
        top = _TITLE.match(line)
        if top and not sections:
            title = top.group(1)
            continue
        if sections:
            sections[-1][1].append(line)
    if not sections:
        raise ValueError("no '## ' sections")
    cleaned = tuple((h, "\n".join(body).strip()) for h, body in sections)
    titles = [h.casefold() for h, _ in cleaned]
    if len(set(titles)) != len(titles):
        raise ValueError("duplicate section headings")
    core = next((b for h, b in cleaned if h.casefold() == REQUIRED_SECTION.casefold()), None)
    if core is None:
        raise ValueError(f"missing required section '## {REQUIRED_SECTION}'")
    if not core:
        raise ValueError(f"section '## {REQUIRED_SECTION}' is empty")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Overlay(name=name, title=title, sections=cleaned, sha256=digest)


def _load_one(file: Path, max_bytes: int) -> Overlay:
    name = file.name[: -len(".md")]
    if not _NAME.match(name):
        raise SkipFileError("invalid_name", f"overlay name {name!r} must match {_NAME.pattern}")
    try:
        # read one byte more than allowed: enough to know it is too big, never the whole file
        with file.open("rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        raise SkipFileError("unreadable", f"cannot read: {exc.strerror or exc}") from exc
    if len(raw) > max_bytes:
        raise SkipFileError("oversize", f"larger than {max_bytes} bytes")
    if not raw.strip():
        raise SkipFileError("empty", "file is empty or whitespace only")
    if b"\x00" in raw:
        raise SkipFileError("binary", "file contains NUL bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SkipFileError("not_utf8", f"invalid UTF-8 at byte {exc.start}") from exc
    try:
        return parse_overlay(name, text)
    except ValueError as exc:
        raise SkipFileError("malformed", str(exc)) from exc


def load_overlays(
    files: Iterable[Path], *, max_bytes: int
) -> tuple[dict[str, Overlay], list[LoadIssue]]:
    """Load every ``*.md`` file; return the good overlays and an issue per skipped file."""
    overlays: dict[str, Overlay] = {}
    issues: list[LoadIssue] = []
    for file in sorted(files, key=lambda f: f.name):
        if not file.name.endswith(".md"):
            continue
        try:
            overlay = _load_one(file, max_bytes)
        except SkipFileError as skip:
            issues.append(LoadIssue(str(file), file.name[:-3], skip.reason, skip.detail))
            continue
        overlays[overlay.name] = overlay
    return overlays, issues


def overlay_files(directory: Path) -> list[Path]:
    """The ``*.md`` files of a directory, sorted by name."""
    return sorted(p for p in directory.iterdir() if p.suffix == ".md" and p.is_file())
