"""Structured JSON logs through stdlib logging, with a correlation id and secret redaction.

* The correlation id lives in a ``ContextVar``: each thread and each asyncio task sees its own
  value (tasks copy the context they were created in), so concurrent requests never mix ids.
* :class:`JsonFormatter` writes one JSON object per line. It never raises: a record whose message
  cannot be formatted or whose extras cannot be serialised is still written, with the problem
  noted, because a log call must never take the caller down.
* :func:`redact` masks secrets both by key (``password``, ``token``, ``api_key``,
  ``authorization``, ``secret``, ...) and by value shape (``sk-...`` API keys, ``Bearer`` tokens,
  JWTs, AWS / GitHub / Slack keys, passwords in URLs, ``password=...`` pairs inside strings).
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import logging.handlers
import os
import re
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import IO, Any

from cert.runtime.config import RuntimeSettings, check_log_format, check_log_level
from cert.runtime.errors import InvalidInputError

__all__ = [
    "REDACTED",
    "CorrelationIdFilter",
    "JsonFormatter",
    "TextFormatter",
    "configure_from_settings",
    "configure_logging",
    "correlation_id",
    "correlation_scope",
    "get_correlation_id",
    "get_logger",
    "log_event",
    "redact",
]

REDACTED = "[REDACTED]"

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "cert_correlation_id", default=None
)

# The library stays silent until an application configures logging (stdlib convention).
logging.getLogger("cert").addHandler(logging.NullHandler())


def get_correlation_id() -> str | None:
    """The correlation id of the current thread / asyncio task, if any."""
    return correlation_id.get()


@contextmanager
def correlation_scope(cid: str | None = None) -> Iterator[str]:
    """Bind a correlation id (a fresh uuid4 hex if ``None``) for the duration of the block."""
    if cid is None:
        cid = uuid.uuid4().hex
    elif not isinstance(cid, str) or not cid.strip() or len(cid) > 256 or not cid.isprintable():
        # Ids often arrive in request headers: refuse control characters (log injection).
        raise InvalidInputError(
            "correlation id must be a non-empty printable string of at most 256 characters, "
            f"got {cid!r}",
            context={"field": "cid", "value": repr(cid)[:300]},
        )
    token = correlation_id.set(cid)
    try:
        yield cid
    finally:
        correlation_id.reset(token)


# ---------------------------------------------------------------------------------- redaction
_SECRET_KEYS = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "pwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "authorization",
        "auth",
        "cookie",
        "set_cookie",
        "private_key",
        "credentials",
        "session_id",
    }
)
_SECRET_SUFFIXES = (
    "_password",
    "_passwd",
    "_passphrase",
    "_secret",
    "_token",
    "_api_key",
    "_apikey",
    "_private_key",
    "_secret_key",
    "_access_key",
    "_authorization",
    "_credentials",
)

# "<what>_token" keys that name a token count or a tokenizer's special token, not a credential.
_NOT_SECRET_KEY = re.compile(
    r"(?:prompt|completion|input|output|reasoning|max|min|total|num|eos|bos|pad|unk|sep|cls|mask)"
    r"_?tokens?"
)
_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _normalised_key(key: str) -> str:
    """``privateKey`` / ``Private-Key`` / ``private key`` -> ``private_key``."""
    return _CAMEL_HUMP.sub("_", key.strip()).casefold().replace("-", "_").replace(" ", "_")


def _mask_key_value(match: re.Match[str]) -> str:
    """Mask the value of a ``<key><secret word>=value`` pair unless the key counts tokens."""
    text, start = match.string, match.start()
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_-"):
        start -= 1  # back to the start of the key: "db" of "dbPassword", "prompt_" of ...
    if _NOT_SECRET_KEY.fullmatch(_normalised_key(text[start : match.end(1)])):
        return match.group(0)
    return match.group(1) + match.group(2) + REDACTED


_Replacement = str | Callable[[re.Match[str]], str]

# (pattern, replacement, needles): a pattern runs only on text whose casefolded form holds one of
# its needles. Most log strings hold none, and substring tests are about ten times cheaper than
# the regexes. casefold, not lower: the (?i) patterns also match e.g. "ſ" (long s) as "s".
_PATTERN_TABLE: tuple[tuple[str, _Replacement, tuple[str, ...]], ...] = (
    # "Bearer <token>" / "Basic <b64>" in headers or prose: keep the scheme, drop the secret.
    (
        r"\b((?i:bearer|basic|token))\s+[A-Za-z0-9._~+/=-]{8,}",
        r"\1 " + REDACTED,
        ("bearer", "basic", "token"),
    ),
    # OpenAI / Anthropic style keys: sk-..., sk-proj-..., sk-ant-...
    (r"\bsk-[A-Za-z0-9_-]{16,}", REDACTED, ("sk-",)),
    # JSON Web Tokens (header.payload.signature, base64url).
    (r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+", REDACTED, ("eyj",)),
    # AWS access key ids, GitHub tokens, Slack tokens, Google API keys.
    (r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", REDACTED, ("akia", "asia")),
    (r"\bgh[pousr]_[A-Za-z0-9]{30,}", REDACTED, ("ghp_", "gho_", "ghu_", "ghs_", "ghr_")),
    (r"\bxox[abprs]-[A-Za-z0-9-]{10,}", REDACTED, ("xox",)),
    (r"\bAIza[0-9A-Za-z_-]{35}", REDACTED, ("aiza",)),
    # The password in a URL's user info: postgres://admin:hunter2@db/app (up to the last @).
    (
        r"\b([A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#@]*:)[^\s/?#]+@",
        r"\1" + REDACTED + "@",
        ("://",),
    ),
    # key=value / key: value pairs whose key ends in a secret word ("password=hunter2",
    # "token: x", "dbPassword=x", "privateKey: x"), except token counts ("prompt_token=512").
    (
        r"((?i:password|passwd|passphrase|secret|token|api[_-]?key|authorization|"
        r"private[_-]?key|access[_-]?key))([\"']?\s*[=:]\s*)"
        r"(?!\[REDACTED\])(\"[^\"]*\"|'[^']*'|[^\s,;&\"'}]+)",
        _mask_key_value,
        ("pass", "secret", "token", "api", "authoriz", "private", "access"),
    ),
)
_SECRET_VALUE_PATTERNS: tuple[tuple[re.Pattern[str], _Replacement], ...] = tuple(
    (re.compile(pattern), replacement) for pattern, replacement, _ in _PATTERN_TABLE
)
_NEEDLES = tuple(needles for _, _, needles in _PATTERN_TABLE)
_SECRET_HINTS = tuple(sorted({needle for needles in _NEEDLES for needle in needles}))


def _may_hold_secret(text: str) -> bool:
    lowered = text.casefold()
    for hint in _SECRET_HINTS:  # noqa: SIM110 (a plain loop is twice as fast as any() here)
        if hint in lowered:
            return True
    return False


_MAX_DEPTH = 32


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """Whether a mapping key names a secret (``max_tokens`` does not; ``auth_token`` does).

    camelCase is split first (``privateKey`` is ``private_key``); ``prompt_token`` and the like
    count tokens and are not secrets.
    """
    normalised = _normalised_key(key)
    if _NOT_SECRET_KEY.fullmatch(normalised):
        return False
    return normalised in _SECRET_KEYS or normalised.endswith(_SECRET_SUFFIXES)


def _redact_text(text: str) -> str:
    if not _may_hold_secret(text):  # the common case: one casefold and a few substring tests
        return text
    lowered = text.casefold()
    active = []
    for pattern_and_replacement, needles in zip(_SECRET_VALUE_PATTERNS, _NEEDLES, strict=True):
        for needle in needles:
            if needle in lowered:
                active.append(pattern_and_replacement)
                break
    # Until nothing changes: masking one secret can expose the shape of another (a masked
    # "key=@" no longer hides the "@" that ends a URL's user info), and redaction must be
    # idempotent. Two passes settle every case found by the property tests; the bound only
    # guarantees termination. "[REDACTED]" holds no needle, so the active set stays right.
    for _ in range(_MAX_PASSES):
        before = text
        for pattern, replacement in active:
            text = pattern.sub(replacement, text)
        if text == before:
            break
    return text


_MAX_PASSES = 4


def redact(value: Any) -> Any:
    """A copy of ``value`` with secrets masked; mappings, sequences and strings are walked.

    Values under secret-named keys are replaced whole; strings are scanned for secret shapes.
    Bytes are decoded (invalid UTF-8 replaced) and scanned like strings. Cycles and nesting
    deeper than 32 levels are cut off rather than followed.
    """
    return _redact(value, 0, set())


_PLAIN = frozenset({int, float, bool, type(None)})


def _redact(value: Any, depth: int, seen: set[int]) -> Any:
    kind = type(value)
    if kind in _PLAIN:  # exact-type fast paths: most log fields are numbers and strings
        return value
    if isinstance(value, str):
        return _redact_text(value)
    if isinstance(value, (bytes, bytearray)):
        return _redact_text(bytes(value).decode("utf-8", errors="replace"))
    if kind is dict or isinstance(value, (Mapping, list, tuple, set, frozenset)):
        if depth >= _MAX_DEPTH:
            return "[TRUNCATED: nested too deeply]"
        if id(value) in seen:
            return "[CYCLE]"
        seen = seen | {id(value)}
        if kind is dict or isinstance(value, Mapping):
            return {
                key: (
                    REDACTED
                    if isinstance(key, str) and is_secret_key(key)
                    else _redact(item, depth + 1, seen)
                )
                for key, item in value.items()
            }
        items = [_redact(item, depth + 1, seen) for item in value]
        return tuple(items) if isinstance(value, tuple) else items
    return value


# ---------------------------------------------------------------------------------- formatting
# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {
    "message",
    "asctime",
    "correlation_id",
    "taskName",
}


_FIXED_FIELDS = frozenset(
    {"timestamp", "level", "logger", "correlation_id", "message", "exception", "stack"}
)


class CorrelationIdFilter(logging.Filter):
    """Stamp records with the correlation id of the thread / task that emitted them.

    Attached to handlers by :func:`configure_logging`, so the id is captured at emit time even if
    a ``QueueHandler`` formats the record later on another thread.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "correlation_id", None) is None:
            record.correlation_id = correlation_id.get()
        return True


def _safe_str(value: Any) -> str:
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception as exc:  # bad %-args or an unprintable msg must not lose the record
        return (
            f"{_safe_str(record.msg)} (unformattable args {_safe_str(record.args)}: "
            f"{type(exc).__name__})"
        )


def _iso_time(created: float) -> str:
    return datetime.fromtimestamp(created, timezone.utc).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, logger, message, correlation_id, extras.

    Extras and messages pass through :func:`redact`; values JSON cannot encode are written as
    ``str(value)``; exceptions go to ``exception`` as a (redacted) traceback string.
    """

    def __init__(self, *, static_fields: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self._static = dict(static_fields or {})

    def format(self, record: logging.LogRecord) -> str:
        try:
            return self._format(record)
        except Exception as exc:  # the last line of defence: never raise from a log call
            fallback = {
                "timestamp": _iso_time(record.created),
                "level": record.levelname,
                "logger": record.name,
                "message": _redact_text(_safe_str(record.msg)),
                "format_error": f"{type(exc).__name__}: {_safe_str(exc)}",
            }
            return _one_line(json.dumps(fallback, default=repr, ensure_ascii=False))

    def _format(self, record: logging.LogRecord) -> str:
        cid = getattr(record, "correlation_id", None)
        # Only what callers supply is scanned for secrets; the fixed fields are ours.
        supplied: dict[str, Any] = {"message": _message(record)}
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and not key.startswith("_"):
                # An extra named like a fixed field must not overwrite it ("level": 3).
                supplied[f"field_{key}" if key in _FIXED_FIELDS else key] = value
        if record.exc_info:
            supplied["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            supplied["stack"] = self.formatStack(record.stack_info)
        payload: dict[str, Any] = {
            **self._static,
            "timestamp": _iso_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "correlation_id": cid if cid is not None else correlation_id.get(),
            **redact(supplied),
        }
        return _one_line(json.dumps(payload, default=_json_default, ensure_ascii=False))


_UNICODE_BREAKS = re.compile("[\u0085\u2028\u2029]")
_ESCAPE_BREAKS = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def _one_line(text: str) -> str:
    """JSON escapes \\n and \\r but not NEL, U+2028, U+2029, which line readers also split on."""
    if _UNICODE_BREAKS.search(text) is not None:
        text = text.translate(_ESCAPE_BREAKS)
    return text


def _json_default(value: Any) -> str:
    return _redact_text(_safe_str(value))


class TextFormatter(logging.Formatter):
    """Human-readable lines with the correlation id; messages redacted like the JSON ones."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        # The record is shared with any other handler: change it only for this call.
        saved = {key: record.__dict__[key] for key in _TEXT_SWAPPED if key in record.__dict__}
        cid = getattr(record, "correlation_id", None) or correlation_id.get() or "-"
        try:
            record.correlation_id = cid
            record.msg, record.args = _redact_text(_message(record)), None
            text = super().format(record)
        except Exception as exc:  # like JsonFormatter: a log call must never raise
            text = f"{record.levelname} {record.name} [{cid}] {record.msg!r} (format error: {exc})"
        finally:
            for key in _TEXT_SWAPPED:
                record.__dict__.pop(key, None)
            record.__dict__.update(saved)
        return _redact_text(text)  # tracebacks too


_TEXT_SWAPPED = ("correlation_id", "msg", "args")


# ---------------------------------------------------------------------------------- setup
_HANDLER_MARK = "_cert_runtime_handler"


def _from_env_or(value: Any, variable: str, default: str) -> tuple[str, Any]:
    """The (label, value) to validate: the argument, else the environment variable, else default."""
    if value is not None:
        return "argument", value
    raw = os.environ.get(variable, "")
    return (variable, raw) if raw.strip() else (variable, default)


def _parse_level(level: str | int | None) -> int:
    label, value = _from_env_or(level, "CERT_LOG_LEVEL", "INFO")
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise InvalidInputError(
                f"level={value!r}: expected a level >= 0",
                context={"field": "level", "value": value},
            )
        return value
    name = check_log_level("level" if label == "argument" else label, value)
    return int(logging.getLevelName(name))


def _parse_format(fmt: str | None) -> str:
    label, value = _from_env_or(fmt, "CERT_LOG_FORMAT", "json")
    return check_log_format("fmt" if label == "argument" else label, value)


def configure_logging(
    level: str | int | None = None,
    fmt: str | None = None,
    *,
    logger: str = "cert",
    stream: IO[str] | None = None,
    rotate_path: str | None = None,
    max_bytes: int = 100 * 1024 * 1024,
    backup_count: int = 10,
) -> logging.Logger:
    """Send ``logger`` (and its children) to ``stream`` and/or a rotating file; idempotent.

    ``level`` / ``fmt`` default to ``CERT_LOG_LEVEL`` / ``CERT_LOG_FORMAT`` (then INFO / json).
    With ``rotate_path`` the records go to a ``RotatingFileHandler`` (``max_bytes``,
    ``backup_count``), and to ``stream`` as well only if one is passed; without it they go to
    ``stream`` or stderr. Calling again replaces the handlers this function installed, so
    repeated configuration never duplicates lines. The logger stops propagating to the root.
    """
    numeric_level = _parse_level(level)
    formatter: logging.Formatter = (
        JsonFormatter() if _parse_format(fmt) == "json" else TextFormatter()
    )
    if not isinstance(logger, str):
        raise InvalidInputError(
            f"logger must be a string, got {logger!r}",
            context={"field": "logger", "value": repr(logger)},
        )
    handlers: list[logging.Handler] = []
    if rotate_path is not None:
        if not isinstance(rotate_path, (str, os.PathLike)) or not str(rotate_path).strip():
            raise InvalidInputError(
                f"rotate_path must be a file path, got {rotate_path!r}",
                context={"field": "rotate_path", "value": repr(rotate_path)},
            )
        for field, value in (("max_bytes", max_bytes), ("backup_count", backup_count)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidInputError(
                    f"{field} must be an int >= 0, got {value!r}",
                    context={"field": field, "value": repr(value)},
                )
        try:
            file_handler = logging.handlers.RotatingFileHandler(
                rotate_path, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8"
            )
        except OSError as exc:
            raise InvalidInputError(
                f"rotate_path={str(rotate_path)!r}: cannot open the log file ({exc.strerror})",
                context={"field": "rotate_path", "value": str(rotate_path)},
            ) from exc
        handlers.append(file_handler)
    if stream is not None or rotate_path is None:
        handlers.append(logging.StreamHandler(stream if stream is not None else sys.stderr))

    target = logging.getLogger(logger)
    for old in [h for h in target.handlers if getattr(h, _HANDLER_MARK, False)]:
        target.removeHandler(old)
        old.close()
    for handler in handlers:
        setattr(handler, _HANDLER_MARK, True)
        handler.setFormatter(formatter)
        handler.addFilter(CorrelationIdFilter())
        target.addHandler(handler)
    target.setLevel(numeric_level)
    target.propagate = False
    return target


def configure_from_settings(
    settings: RuntimeSettings, *, logger: str = "cert", stream: IO[str] | None = None
) -> logging.Logger:
    """:func:`configure_logging` with the level, format and log file (``log_file``) of settings."""
    if not isinstance(settings, RuntimeSettings):
        raise InvalidInputError(
            f"settings must be a RuntimeSettings, got {settings!r}",
            context={"field": "settings", "value": repr(settings)},
        )
    return configure_logging(
        settings.log_level,
        settings.log_format,
        logger=logger,
        stream=stream,
        rotate_path=settings.log_file,
    )


def log_event(logger: logging.Logger, level: int | str, message: str, /, **fields: Any) -> None:
    """Log ``message`` with ``fields`` as structured extras, whatever the field names are.

    ``logger.info(msg, extra={"name": ...})`` raises ``KeyError`` in the caller for names that
    ``LogRecord`` reserves (``name``, ``msg``, ``args``, ``message``, ``module``, ...); here such
    fields are written with a ``field_`` prefix instead. ``message`` is logged verbatim (no
    ``%`` formatting), so user text containing ``%`` is safe too.
    """
    if not isinstance(logger, logging.Logger):
        raise InvalidInputError(
            f"logger must be a logging.Logger, got {logger!r}",
            context={"field": "logger", "value": repr(logger)},
        )
    numeric = _parse_level(level)
    if not logger.isEnabledFor(numeric):
        return
    extra = {
        (f"field_{key}" if key in _RECORD_ATTRS else key): value for key, value in fields.items()
    }
    logger.log(numeric, "%s", message, extra=extra, stacklevel=2)


def get_logger(name: str) -> logging.Logger:
    """The stdlib logger ``name``; names under ``cert.`` follow :func:`configure_logging`."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(
            f"logger name must be a non-empty string, got {name!r}",
            context={"field": "name", "value": repr(name)},
        )
    return logging.getLogger(name)
