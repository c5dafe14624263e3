"""Atomic, locked file writes and content checksums for every artifact t1-deploy produces."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from t1_deploy.errors import ArtifactError


def canonical_json(payload: Any) -> str:
    """Sorted keys, no whitespace, no NaN: the byte string a checksum is computed over."""
    try:
        return json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except ValueError as exc:
        raise ArtifactError(f"artifact holds a non-finite number: {exc}") from exc


def checksum(payload: Any) -> str:
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def atomic_write_text(path: Path, text: str) -> Path:
    """Write to a temp file in the same directory, fsync, then `os.replace`, under a file lock."""
    from filelock import FileLock

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    Path(str(path) + ".lock").unlink(missing_ok=True)
    return path


def write_json(path: Path, payload: Any) -> Path:
    return atomic_write_text(path, json.dumps(payload, indent=2, allow_nan=False) + "\n")


def with_checksum(content: dict[str, Any]) -> dict[str, Any]:
    """Attach `checksum` = sha256 of the canonical JSON of everything else."""
    body = {k: v for k, v in content.items() if k != "checksum"}
    return {**body, "checksum": {"algorithm": "sha256", "value": checksum(body)}}


def verify_checksum(payload: dict[str, Any], source: str) -> None:
    stored = payload.get("checksum")
    if not isinstance(stored, dict) or stored.get("algorithm") != "sha256":
        raise ArtifactError(f"{source}: missing or malformed 'checksum' field")
    body = {k: v for k, v in payload.items() if k != "checksum"}
    if stored.get("value") != checksum(body):
        raise ArtifactError(f"{source}: checksum mismatch (content was altered or corrupted)")


def read_json(path: Path, *, max_bytes: int = 20_000_000) -> Any:
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ArtifactError(f"cannot read {path}: {exc}") from exc
    if size > max_bytes:
        raise ArtifactError(f"{path} is {size} bytes, more than the {max_bytes} allowed")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path} is not valid JSON: {exc}") from exc
