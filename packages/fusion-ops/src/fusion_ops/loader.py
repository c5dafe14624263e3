"""``--backend module:Class``: build any :class:`~fusion_ops.backends.CompletionBackend`.

The module is imported with :func:`importlib.import_module` (so it must be importable from the
current environment), ``Class`` may be a dotted attribute path, and the class is called with the
``--backend-option KEY=VALUE`` pairs as string keyword arguments. Every way this can go wrong is a
:class:`~fusion_ops.errors.BackendLoadError` that names the spec and the step that failed.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping

from fusion_ops.backends import CompletionBackend
from fusion_ops.errors import BackendLoadError

__all__ = ["load_backend", "parse_options"]

_SPEC = re.compile(r"^([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)$")
_KEY = re.compile(r"^[A-Za-z_]\w*$")


def parse_options(pairs: list[str]) -> dict[str, str]:
    """``["k=v", ...]`` → ``{"k": "v"}``; a malformed or repeated key is an error."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not _KEY.match(key):
            raise BackendLoadError(f"backend option must be KEY=VALUE, got {pair[:80]!r}")
        if key in options:
            raise BackendLoadError(f"backend option {key!r} is given twice")
        options[key] = value
    return options


def load_backend(spec: str, options: Mapping[str, str] | None = None) -> CompletionBackend:
    """Import ``module:Class``, call it with ``options`` and check the result is a backend."""
    match = _SPEC.match(spec) if isinstance(spec, str) else None
    if match is None:
        raise BackendLoadError(
            f"backend must be 'offline', 'anthropic' or 'module:Class', got {spec!r:.80}"
        )
    module_name, attr_path = match.groups()
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise BackendLoadError(
                f"backend {spec!r}: no module named {exc.name!r} (is it installed, or on "
                "PYTHONPATH?)"
            ) from exc
        raise BackendLoadError(
            f"backend {spec!r}: importing {module_name!r} failed: {exc}"
        ) from exc
    except Exception as exc:  # the module's own import-time code failed
        raise BackendLoadError(
            f"backend {spec!r}: importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    target: object = module
    for part in attr_path.split("."):
        if not hasattr(target, part):
            raise BackendLoadError(f"backend {spec!r}: {module_name!r} has no attribute {part!r}")
        target = getattr(target, part)
    if not callable(target):
        raise BackendLoadError(f"backend {spec!r}: {attr_path!r} is not a class or factory")
    try:
        backend = target(**dict(options or {}))
    except Exception as exc:
        raise BackendLoadError(
            f"backend {spec!r}: constructing it with options {sorted(options or {})} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(backend, CompletionBackend) or not callable(backend.complete):
        raise BackendLoadError(
            f"backend {spec!r} does not implement CompletionBackend: it needs a 'name' "
            "attribute and a 'complete(prompt, *, run)' method"
        )
    if not isinstance(backend.name, str) or not backend.name.strip():
        raise BackendLoadError(f"backend {spec!r}: 'name' must be a non-empty string")
    return backend
