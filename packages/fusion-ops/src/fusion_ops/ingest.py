"""``fusion-budget ingest``: a budget report from usage logs a team already keeps.

Each input file is JSON Lines or one JSON document (an array, or a pretty-printed object), holding
any mix of:

- **OTLP JSON** export requests (``{"resourceSpans": [...]}``, what the OpenTelemetry Collector's
  file exporter and OTLP/HTTP JSON carry): attributes as ``[{"key", "value": {"intValue": ...}}]``,
  times in ``startTimeUnixNano`` / ``endTimeUnixNano``, ``status.code`` 2 = error;
- **OpenTelemetry SDK spans** as ``ReadableSpan.to_json()`` writes them (console or file span
  exporters): flat ``attributes``, ISO 8601 ``start_time`` / ``end_time``, ``status.status_code``;
- **plain usage records**: ``input_tokens``, ``output_tokens`` (top level or under ``usage``, as
  the Anthropic API reports them), optional ``cache_read_input_tokens`` /
  ``cache_creation_input_tokens``, ``latency_ms`` (or ``duration_ms``), ``ok`` / ``error``,
  ``model``.

A span counts when it carries GenAI semantic-convention attributes: ``gen_ai.usage.input_tokens``,
``gen_ai.usage.output_tokens`` (and ``gen_ai.usage.cache_read.input_tokens`` /
``gen_ai.usage.cache_creation.input_tokens`` when present), ``gen_ai.request.model``; its latency
is its duration. An error span is a failed sample. Spans without ``gen_ai.*`` attributes, GenAI
spans that report no usage and records without the grouping attribute are skipped and counted in
the report metadata (``ingest.skipped``), never silently. A malformed record (bad JSON, a negative
or non-integer token count, a span without times) stops the ingest with an
:class:`~fusion_ops.errors.IngestError` naming file, line and field.

Memory is bounded: files are streamed line by line, and each scenario and side keeps at most
``max_samples`` samples, a uniform reservoir sample with a fixed seed (so the same logs give the
same report); where that happened ``ingest.sampled`` records kept vs seen.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from fusion_ops import _validate
from fusion_ops.errors import IngestError
from fusion_ops.report import (
    MAX_TOKENS,
    BudgetReport,
    Sample,
    ScenarioSamples,
    reject_json_constant,
)

__all__ = ["DEFAULT_MAX_SAMPLES", "MAX_DOCUMENT_BYTES", "UsageRecord", "ingest_report", "read_log"]

DEFAULT_MAX_SAMPLES = 10_000
MAX_DOCUMENT_BYTES = 50_000_000  # one JSON line or one whole-file document
_SKIP_REASONS = ("not_genai", "no_usage", "no_group")
_OTLP_ERROR = (2, "STATUS_CODE_ERROR")
_GENAI_CACHE_READ = "gen_ai.usage.cache_read.input_tokens"
_GENAI_CACHE_WRITE = "gen_ai.usage.cache_creation.input_tokens"
_NOT_JSON = object()
_PLAIN_KEYS = frozenset(
    {"input_tokens", "output_tokens", "usage", "latency_ms", "duration_ms", "ok", "error"}
)


@dataclass(frozen=True)
class UsageRecord:
    """One call found in a log: its scenario (group), model and measured sample."""

    group: str
    model: str | None
    sample: Sample


class _Where:
    """File and line of the record being read, for error messages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.line = 0

    def error(self, message: str) -> IngestError:
        return IngestError(f"{self.path}:{self.line}: {message}")


def _count(where: _Where, field: str, value: Any) -> int:
    """Token counts: JSON integers, or OTLP's int64-as-string; at most MAX_TOKENS."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS:
        raise where.error(
            f"{field} must be an integer in [0, {MAX_TOKENS}], got {_validate.show(value)}"
        )
    return value


def _millis(where: _Where, field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise where.error(f"{field} must be a number, got {_validate.show(value)}")
    number = _validate.as_float(value)
    if not math.isfinite(number) or number < 0:
        raise where.error(f"{field} must be a finite number >= 0, got {_validate.show(value)}")
    return number


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _otlp_value(value: Any) -> Any:
    """An OTLP ``AnyValue`` → the Python value (arrays and maps are not needed here)."""
    if not isinstance(value, Mapping):
        return None
    for key in ("stringValue", "intValue", "doubleValue", "boolValue"):
        if key in value:
            return value[key]
    return None


def _otlp_attributes(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, list):
        return {}
    return {
        item["key"]: _otlp_value(item.get("value"))
        for item in raw
        if isinstance(item, Mapping) and isinstance(item.get("key"), str)
    }


def _unix_nanos(where: _Where, field: str, value: Any) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise where.error(f"{field} must be unix nanoseconds, got {_validate.show(value)}")


def _iso_time(where: _Where, field: str, value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise where.error(f"{field} must be an ISO 8601 time, got {_validate.show(value)}")
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise where.error(f"{field} must be an ISO 8601 time, got {_validate.show(value)}") from exc
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.timezone.utc)


class _Reader:
    """Turns decoded JSON values into records or skip reasons."""

    def __init__(self, group_by: str) -> None:
        self.group_by = group_by

    def _genai(
        self,
        where: _Where,
        attrs: Mapping[str, Any],
        resource: Mapping[str, Any],
        duration_ms: float,
        error: str | None,
    ) -> UsageRecord | str:
        if not any(isinstance(k, str) and k.startswith("gen_ai.") for k in attrs):
            return "not_genai"
        group = attrs.get(self.group_by, resource.get(self.group_by))
        if group is None or group == "":
            return "no_group"
        model = attrs.get("gen_ai.request.model") or attrs.get("gen_ai.response.model")
        model = str(model) if model is not None else None
        if error is not None:
            return UsageRecord(
                str(group), model, Sample(ok=False, error=error, latency_ms=duration_ms)
            )
        tokens_in = attrs.get("gen_ai.usage.input_tokens")
        tokens_out = attrs.get("gen_ai.usage.output_tokens")
        if tokens_in is None or tokens_out is None:
            return "no_usage"
        cache_read = attrs.get(_GENAI_CACHE_READ)
        cache_write = attrs.get(_GENAI_CACHE_WRITE)
        sample = Sample(
            ok=True,
            input_tokens=_count(where, "gen_ai.usage.input_tokens", tokens_in),
            output_tokens=_count(where, "gen_ai.usage.output_tokens", tokens_out),
            latency_ms=duration_ms,
            cache_read_input_tokens=(
                None if cache_read is None else _count(where, _GENAI_CACHE_READ, cache_read)
            ),
            cache_creation_input_tokens=(
                None if cache_write is None else _count(where, _GENAI_CACHE_WRITE, cache_write)
            ),
        )
        return UsageRecord(str(group), model, sample)

    def _otlp(self, where: _Where, document: Mapping[str, Any]) -> Iterator[UsageRecord | str]:
        resource_spans = document.get("resourceSpans")
        if not isinstance(resource_spans, list):
            raise where.error("resourceSpans must be an array")
        for rs in resource_spans:
            if not isinstance(rs, Mapping):
                raise where.error("resourceSpans[] must be objects")
            resource = rs.get("resource")
            resource_attrs = _otlp_attributes(
                resource.get("attributes") if isinstance(resource, Mapping) else None
            )
            for ss in rs.get("scopeSpans") or []:
                spans = ss.get("spans") if isinstance(ss, Mapping) else None
                for span in spans if isinstance(spans, list) else []:
                    if not isinstance(span, Mapping):
                        raise where.error("spans[] must be objects")
                    attrs = _otlp_attributes(span.get("attributes"))
                    start = _unix_nanos(where, "startTimeUnixNano", span.get("startTimeUnixNano"))
                    end = _unix_nanos(where, "endTimeUnixNano", span.get("endTimeUnixNano"))
                    if end < start:
                        raise where.error(f"span {span.get('name')!r} ends before it starts")
                    status = _mapping(span.get("status"))
                    error = None
                    if status.get("code") in _OTLP_ERROR:
                        error = str(attrs.get("error.type") or status.get("message") or "error")
                    yield self._genai(where, attrs, resource_attrs, (end - start) / 1e6, error)

    def _sdk_span(self, where: _Where, span: Mapping[str, Any]) -> UsageRecord | str:
        attrs = span.get("attributes")
        if not isinstance(attrs, Mapping):
            raise where.error("attributes must be an object")
        resource = span.get("resource")
        resource_attrs = resource.get("attributes") if isinstance(resource, Mapping) else None
        start = _iso_time(where, "start_time", span.get("start_time"))
        end = _iso_time(where, "end_time", span.get("end_time"))
        if end < start:
            raise where.error(f"span {span.get('name')!r} ends before it starts")
        status = _mapping(span.get("status"))
        error = None
        if status.get("status_code") == "ERROR":
            error = str(attrs.get("error.type") or status.get("description") or "error")
        return self._genai(
            where,
            attrs,
            resource_attrs if isinstance(resource_attrs, Mapping) else {},
            (end - start) / dt.timedelta(microseconds=1) / 1000.0,  # exact: integer microseconds
            error,
        )

    @staticmethod
    def _optional(where: _Where, usage: Mapping[str, Any], key: str) -> int | None:
        return None if usage.get(key) is None else _count(where, key, usage[key])

    def _plain(self, where: _Where, record: Mapping[str, Any]) -> UsageRecord | str:
        attrs = record.get("attributes")
        attrs = attrs if isinstance(attrs, Mapping) else {}
        group = record.get(self.group_by, attrs.get(self.group_by))
        if group is None and self.group_by == "gen_ai.request.model":
            group = record.get("model")  # the default grouping works for plain records too
        if group is None or group == "":
            return "no_group"
        usage = _mapping(record.get("usage")) or record
        latency = record.get("latency_ms", record.get("duration_ms"))
        if latency is None:
            raise where.error("latency_ms (or duration_ms) is missing")
        latency_ms = _millis(where, "latency_ms", latency)
        model = record.get("model")
        model = str(model) if model is not None else None
        ok = record.get("ok", True)
        if ok is False or record.get("error"):
            error = str(record.get("error") or "error")
            return UsageRecord(
                str(group), model, Sample(ok=False, error=error, latency_ms=latency_ms)
            )
        if ok is not True:
            raise where.error(f"ok must be true or false, got {_validate.show(ok)}")
        for key in ("input_tokens", "output_tokens"):
            if key not in usage:
                raise where.error(f"{key} is missing")
        sample = Sample(
            ok=True,
            input_tokens=_count(where, "input_tokens", usage["input_tokens"]),
            output_tokens=_count(where, "output_tokens", usage["output_tokens"]),
            latency_ms=latency_ms,
            cache_read_input_tokens=self._optional(where, usage, "cache_read_input_tokens"),
            cache_creation_input_tokens=self._optional(where, usage, "cache_creation_input_tokens"),
        )
        return UsageRecord(str(group), model, sample)

    def records(self, where: _Where, value: Any) -> Iterator[UsageRecord | str]:
        """Every record (or skip reason) in one decoded JSON value."""
        if isinstance(value, list):
            for item in value:
                yield from self.records(where, item)
        elif not isinstance(value, Mapping):
            raise where.error(f"expected a JSON object, got {type(value).__name__}")
        elif "resourceSpans" in value:
            yield from self._otlp(where, value)
        elif "start_time" in value or "context" in value:
            yield self._sdk_span(where, value)
        elif _PLAIN_KEYS & set(value):
            yield self._plain(where, value)
        else:
            raise where.error(
                "not a usage record, an OpenTelemetry span or an OTLP export "
                f"(keys {sorted(map(str, value))[:8]})"
            )


def _decode(where: _Where, raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=reject_json_constant)
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError, or an int too long
        raise where.error(f"not valid UTF-8 JSON: {exc}") from exc


def _values(handle: BinaryIO, digest: Any, where: _Where) -> Iterator[Any]:
    """Decoded JSON values of a JSON Lines file, or of a whole-file document."""
    first = handle.readline(MAX_DOCUMENT_BYTES + 1)
    head = first.lstrip()
    value = _NOT_JSON
    if head.startswith(b"{"):
        try:
            value = json.loads(first.decode("utf-8"), parse_constant=reject_json_constant)
        except (UnicodeDecodeError, ValueError):
            value = _NOT_JSON  # a pretty-printed document, or an error reported below
    if head.startswith(b"[") or (head.startswith(b"{") and value is _NOT_JSON):
        document = first + handle.read(MAX_DOCUMENT_BYTES + 1 - len(first))
        digest.update(document)
        where.line = 1
        if len(document) > MAX_DOCUMENT_BYTES:
            raise where.error(f"a JSON document above {MAX_DOCUMENT_BYTES} bytes; use JSON Lines")
        yield _decode(where, document)
        return
    line = first
    while line:
        where.line += 1
        digest.update(line)
        if len(line) > MAX_DOCUMENT_BYTES:
            raise where.error(f"line longer than {MAX_DOCUMENT_BYTES} bytes")
        if where.line == 1 and value is not _NOT_JSON:
            yield value
        elif line.strip():
            yield _decode(where, line)
        line = handle.readline(MAX_DOCUMENT_BYTES + 1)


def read_log(
    path: str | os.PathLike[str], *, group_by: str, digest: Any | None = None
) -> Iterator[UsageRecord | str]:
    """Stream the records of one log file; skipped entries come out as their reason."""
    file = Path(path)
    where = _Where(file)
    reader = _Reader(group_by)
    try:
        with file.open("rb") as handle:
            for value in _values(handle, digest or hashlib.sha256(), where):
                yield from reader.records(where, value)
    except OSError as exc:
        raise IngestError(f"{file}: {exc.strerror or exc}") from exc


class _Reservoir:
    """At most ``size`` samples, each seen sample kept with equal probability (Algorithm R)."""

    def __init__(self, size: int, seed: str) -> None:
        self.size = size
        self.seen = 0
        self.kept: list[Sample] = []
        self._rng = random.Random(hashlib.sha256(seed.encode()).digest())

    def add(self, sample: Sample) -> None:
        self.seen += 1
        if len(self.kept) < self.size:
            self.kept.append(sample)
            return
        slot = self._rng.randrange(self.seen)
        if slot < self.size:
            self.kept[slot] = sample


def _side(
    label: str, paths: Sequence[str | os.PathLike[str]], group_by: str, max_samples: int
) -> tuple[dict[str, _Reservoir], dict[str, int], set[str], str, int]:
    if not paths:
        raise IngestError(f"{label}: at least one log file is needed")
    groups: dict[str, _Reservoir] = {}
    skipped = dict.fromkeys(_SKIP_REASONS, 0)
    models: set[str] = set()
    digest = hashlib.sha256()
    used = 0
    for path in paths:
        for item in read_log(path, group_by=group_by, digest=digest):
            if isinstance(item, str):
                skipped[item] += 1
                continue
            used += 1
            if item.model:
                models.add(item.model)
            if item.group not in groups:
                groups[item.group] = _Reservoir(max_samples, f"{label}\x00{item.group}")
            groups[item.group].add(item.sample)
    return groups, skipped, models, digest.hexdigest(), used


def ingest_report(
    baseline: Sequence[str | os.PathLike[str]],
    candidate: Sequence[str | os.PathLike[str]],
    *,
    group_by: str = "gen_ai.request.model",
    max_samples: int = DEFAULT_MAX_SAMPLES,
    created_at: dt.datetime | None = None,
) -> BudgetReport:
    """A budget report from baseline and candidate logs, one scenario per ``group_by`` value."""
    _validate.text("group_by", group_by, max_chars=200)
    _validate.integer("max_samples", max_samples, minimum=2, maximum=1_000_000)
    sides = {
        label: _side(label, paths, group_by, max_samples)
        for label, paths in (("baseline", baseline), ("candidate", candidate))
    }
    base_groups, cand_groups = sides["baseline"][0], sides["candidate"][0]
    common = [g for g in base_groups if g in cand_groups]
    if not common:
        raise IngestError(
            f"no scenario ({group_by}) has records on both sides: baseline has "
            f"{sorted(base_groups)[:5]}, candidate has {sorted(cand_groups)[:5]}"
        )
    sampled = {
        g: {
            label: [len(groups[g].kept), groups[g].seen]
            for label, groups in (("baseline", base_groups), ("candidate", cand_groups))
        }
        for g in common
        if base_groups[g].seen > max_samples or cand_groups[g].seen > max_samples
    }
    models = sorted(sides["baseline"][2] | sides["candidate"][2])
    metadata: dict[str, Any] = {
        "created_at": (created_at or dt.datetime.now(dt.timezone.utc)).isoformat(),
        "model": ",".join(models) if models else "unknown",
        "tokenizer": "reported in the usage logs",
        "runs_per_side": min(
            len(groups[g].kept) for groups in (base_groups, cand_groups) for g in common
        ),
        "baseline": _side_metadata(baseline, sides["baseline"][3]),
        "candidate": _side_metadata(candidate, sides["candidate"][3]),
        "ingest": {
            "group_by": group_by,
            "max_samples": max_samples,
            "used": {label: side[4] for label, side in sides.items()},
            "skipped": {label: side[1] for label, side in sides.items()},
            "dropped_scenarios": {
                "baseline_only": sorted(set(base_groups) - set(cand_groups)),
                "candidate_only": sorted(set(cand_groups) - set(base_groups)),
            },
            "sampled": sampled,
        },
    }
    return BudgetReport(
        metadata=metadata,
        scenarios=tuple(
            ScenarioSamples(
                id=g,
                category=None,
                baseline=tuple(base_groups[g].kept),
                candidate=tuple(cand_groups[g].kept),
            )
            for g in common
        ),
    )


def _side_metadata(paths: Iterable[str | os.PathLike[str]], digest: str) -> dict[str, Any]:
    names = ",".join(Path(p).name for p in paths)
    return {"git_sha": None, "config_hash": digest, "prompt_strategy": f"ingest:{names}"[:500]}
