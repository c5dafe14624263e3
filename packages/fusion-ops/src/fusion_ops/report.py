"""The versioned budget report: raw samples per scenario for a baseline and a candidate.

The JSON Schema ships as package data (``fusion_ops/defaults/budget_report.schema.json``,
:func:`report_schema`). :func:`parse_report` validates a decoded document by hand, so the
package needs no JSON Schema library at run time; the test suite checks that both validators
agree. Errors carry the JSON path of the offending field.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fusion_ops import _validate
from fusion_ops.config import embedded_defaults_text
from fusion_ops.errors import ReportError

__all__ = [
    "MAX_REPORT_BYTES",
    "REPORT_SCHEMA_ID",
    "REPORT_SCHEMA_VERSION",
    "BudgetReport",
    "Sample",
    "ScenarioSamples",
    "load_report",
    "parse_report",
    "report_schema",
]

REPORT_SCHEMA_ID = "fusion-ops/budget-report"
REPORT_SCHEMA_VERSION = 1
MAX_REPORT_BYTES = 50_000_000
_CACHE_KEYS = ("cache_read_input_tokens", "cache_creation_input_tokens")
MAX_TOKENS = 10**12  # per sample and field: far above any real completion, far below float range


@dataclass(frozen=True)
class Sample:
    """One run. Failed runs have ``ok=False`` and no token counts.

    ``input_tokens`` follows the provider's meaning: with prompt caching (Anthropic) it excludes
    the cached prompt tokens, which are reported apart as ``cache_read_input_tokens`` and
    ``cache_creation_input_tokens`` (None when the backend does not report them).
    """

    ok: bool
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_ms: float | None = None
    error: str | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None

    @property
    def total_tokens(self) -> int:
        """Every token the model processed: prompt (cached or not) plus output."""
        return (
            (self.input_tokens or 0)
            + (self.output_tokens or 0)
            + (self.cache_read_input_tokens or 0)
            + (self.cache_creation_input_tokens or 0)
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any]
        if self.ok:
            out = {
                "ok": True,
                "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens,
                "latency_ms": self.latency_ms,
            }
            for key in _CACHE_KEYS:
                if getattr(self, key) is not None:
                    out[key] = getattr(self, key)
            return out
        out = {"ok": False, "error": self.error or "unknown"}
        if self.latency_ms is not None:
            out["latency_ms"] = self.latency_ms
        return out


@dataclass(frozen=True)
class ScenarioSamples:
    id: str
    category: str | None
    baseline: tuple[Sample, ...]
    candidate: tuple[Sample, ...]
    baseline_overlay: str | None = None
    candidate_overlay: str | None = None


@dataclass(frozen=True)
class BudgetReport:
    metadata: dict[str, Any]
    scenarios: tuple[ScenarioSamples, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": REPORT_SCHEMA_ID,
            "schema_version": REPORT_SCHEMA_VERSION,
            "metadata": self.metadata,
            "scenarios": [
                {
                    "id": s.id,
                    "category": s.category,
                    "baseline": {
                        "overlay": s.baseline_overlay,
                        "samples": [x.to_json() for x in s.baseline],
                    },
                    "candidate": {
                        "overlay": s.candidate_overlay,
                        "samples": [x.to_json() for x in s.candidate],
                    },
                }
                for s in self.scenarios
            ],
        }


def report_schema() -> dict[str, Any]:
    """The report's JSON Schema (draft 2020-12)."""
    schema: dict[str, Any] = json.loads(embedded_defaults_text("budget_report.schema.json"))
    return schema


def _fail(path: str, message: str) -> ReportError:
    return ReportError(f"{path}: {message}")


def _obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, f"must be an object, got {type(value).__name__}")
    return value


def _str(value: Any, path: str, *, nullable: bool = False) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str) or not value:
        raise _fail(path, f"must be a non-empty string, got {_validate.show(value)}")
    return value


def _count(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS:
        raise _fail(path, f"must be an integer in [0, {MAX_TOKENS}], got {_validate.show(value)}")
    return value


def _ms(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(path, f"must be a number, got {_validate.show(value)}")
    number = _validate.as_float(value)
    if not math.isfinite(number) or number < 0:
        raise _fail(path, f"must be a finite number >= 0, got {_validate.show(value)}")
    return number


def _sample(raw: Any, path: str) -> Sample:
    data = _obj(raw, path)
    ok = data.get("ok")
    if ok is True:
        extra = set(data) - {"ok", "input_tokens", "output_tokens", "latency_ms", *_CACHE_KEYS}
        if extra:
            raise _fail(path, f"unexpected keys {sorted(extra)}")
        for key in ("input_tokens", "output_tokens", "latency_ms"):
            if key not in data:
                raise _fail(f"{path}.{key}", "is missing")
        cache_read, cache_write = (
            _count(data[k], f"{path}.{k}") if k in data else None for k in _CACHE_KEYS
        )
        return Sample(
            ok=True,
            input_tokens=_count(data["input_tokens"], f"{path}.input_tokens"),
            output_tokens=_count(data["output_tokens"], f"{path}.output_tokens"),
            latency_ms=_ms(data["latency_ms"], f"{path}.latency_ms"),
            cache_read_input_tokens=cache_read,
            cache_creation_input_tokens=cache_write,
        )
    if ok is False:
        extra = set(data) - {"ok", "error", "latency_ms"}
        if extra:
            raise _fail(path, f"unexpected keys {sorted(extra)}")
        if not isinstance(data.get("error"), str):
            raise _fail(f"{path}.error", "must be a string on a failed sample")
        latency = data.get("latency_ms")
        return Sample(
            ok=False,
            error=data["error"],
            latency_ms=None if latency is None else _ms(latency, f"{path}.latency_ms"),
        )
    raise _fail(f"{path}.ok", f"must be true or false, got {_validate.show(ok)}")


def _side(raw: Any, path: str) -> tuple[tuple[Sample, ...], str | None]:
    data = _obj(raw, path)
    samples = data.get("samples")
    if not isinstance(samples, list) or not samples:
        raise _fail(f"{path}.samples", "must be a non-empty array")
    overlay = _str(data.get("overlay"), f"{path}.overlay", nullable=True)
    return tuple(_sample(s, f"{path}.samples[{i}]") for i, s in enumerate(samples)), overlay


def _side_metadata(raw: Any, path: str) -> None:
    data = _obj(raw, path)
    if "git_sha" not in data:
        raise _fail(f"{path}.git_sha", "is missing (use null when unknown)")
    _str(data["git_sha"], f"{path}.git_sha", nullable=True)
    digest = data.get("config_hash")
    if not (
        isinstance(digest, str)
        and len(digest) == 64
        and all(c in "0123456789abcdef" for c in digest)
    ):
        raise _fail(
            f"{path}.config_hash", f"must be a sha256 hex digest, got {_validate.show(digest)}"
        )
    _str(data.get("prompt_strategy"), f"{path}.prompt_strategy")


def parse_report(document: Any) -> BudgetReport:
    """Validate a decoded JSON document against the report schema; raise :class:`ReportError`."""
    root = _obj(document, "$")
    if root.get("schema") != REPORT_SCHEMA_ID:
        raise _fail(
            "$.schema", f"must be {REPORT_SCHEMA_ID!r}, got {_validate.show(root.get('schema'))}"
        )
    if root.get("schema_version") != REPORT_SCHEMA_VERSION:
        raise _fail(
            "$.schema_version",
            f"must be {REPORT_SCHEMA_VERSION}, got {_validate.show(root.get('schema_version'))}",
        )
    extra = set(root) - {"schema", "schema_version", "metadata", "scenarios"}
    if extra:
        raise _fail("$", f"unexpected keys {sorted(extra)}")
    meta = _obj(root.get("metadata"), "$.metadata")
    for key in ("created_at", "model", "tokenizer"):
        _str(meta.get(key), f"$.metadata.{key}")
    runs = meta.get("runs_per_side")
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise _fail(
            "$.metadata.runs_per_side", f"must be an integer >= 1, got {_validate.show(runs)}"
        )
    _side_metadata(meta.get("baseline"), "$.metadata.baseline")
    _side_metadata(meta.get("candidate"), "$.metadata.candidate")
    raw_scenarios = root.get("scenarios")
    if not isinstance(raw_scenarios, list) or not raw_scenarios:
        raise _fail("$.scenarios", "must be a non-empty array")
    scenarios: list[ScenarioSamples] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_scenarios):
        path = f"$.scenarios[{i}]"
        data = _obj(raw, path)
        sid = _str(data.get("id"), f"{path}.id")
        assert sid is not None
        if sid in seen:
            raise _fail(f"{path}.id", f"duplicate scenario id {sid!r}")
        seen.add(sid)
        category = data.get("category")
        if category is not None and not isinstance(category, str):
            raise _fail(f"{path}.category", f"must be a string, got {_validate.show(category)}")
        base, base_overlay = _side(data.get("baseline"), f"{path}.baseline")
        cand, cand_overlay = _side(data.get("candidate"), f"{path}.candidate")
        scenarios.append(ScenarioSamples(sid, category, base, cand, base_overlay, cand_overlay))
    return BudgetReport(metadata=meta, scenarios=tuple(scenarios))


def load_report(path: str | os.PathLike[str]) -> BudgetReport:
    """Read and validate a report file; every failure is a :class:`ReportError`."""
    file = Path(path)
    try:
        size = file.stat().st_size
        if size > MAX_REPORT_BYTES:
            raise ReportError(f"report file {file} is {size} bytes (limit {MAX_REPORT_BYTES})")
        raw = file.read_bytes()
    except OSError as exc:
        raise ReportError(f"report file {file}: {exc.strerror or exc}") from exc
    try:
        document = json.loads(raw.decode("utf-8"), parse_constant=reject_json_constant)
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError, or an int too long
        raise ReportError(f"report file {file} is not valid UTF-8 JSON: {exc}") from exc
    return parse_report(document)


def reject_json_constant(name: str) -> Any:
    """``parse_constant`` hook: NaN and Infinity are not JSON, and no count may be one."""
    raise json.JSONDecodeError(f"non-standard constant {name}", name, 0)
