"""The hand-written validator and the shipped JSON Schema agree; bad files give ReportError."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from fusion_ops.errors import ReportError
from fusion_ops.report import load_report, parse_report, report_schema


def _schema_ok(doc: Any) -> bool:
    try:
        jsonschema.validate(doc, report_schema(), cls=jsonschema.Draft202012Validator)
    except jsonschema.ValidationError:
        return False
    return True


def _parser_ok(doc: Any) -> bool:
    try:
        parse_report(doc)
    except ReportError:
        return False
    return True


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(report_schema())


def test_generated_report_round_trips(report_dict: dict[str, Any]) -> None:
    assert _schema_ok(report_dict)
    report = parse_report(report_dict)
    assert report.to_json() == report_dict


def _mutations() -> list[tuple[str, Any]]:
    def set_path(path: str, value: Any) -> Any:
        def apply(doc: dict[str, Any]) -> None:
            node: Any = doc
            parts = path.split("/")
            for part in parts[:-1]:
                node = node[int(part)] if part.isdigit() else node[part]
            last = parts[-1]
            if value is _DELETE:
                del node[int(last) if last.isdigit() else last]
            else:
                node[int(last) if last.isdigit() else last] = value

        return apply

    return [
        ("wrong schema id", set_path("schema", "other")),
        ("wrong version", set_path("schema_version", 2)),
        ("no scenarios", set_path("scenarios", [])),
        ("missing metadata", set_path("metadata", _DELETE)),
        ("bad runs", set_path("metadata/runs_per_side", 0)),
        ("bool runs", set_path("metadata/runs_per_side", True)),
        ("bad hash", set_path("metadata/baseline/config_hash", "xyz")),
        ("missing sha key", set_path("metadata/candidate/git_sha", _DELETE)),
        ("empty samples", set_path("scenarios/0/baseline/samples", [])),
        ("negative tokens", set_path("scenarios/0/baseline/samples/0/input_tokens", -1)),
        ("float tokens", set_path("scenarios/0/candidate/samples/1/output_tokens", 1.5)),
        ("string latency", set_path("scenarios/0/candidate/samples/1/latency_ms", "fast")),
        ("missing latency", set_path("scenarios/1/candidate/samples/0/latency_ms", _DELETE)),
        ("missing tokens", set_path("scenarios/1/baseline/samples/2/input_tokens", _DELETE)),
        ("ok not bool", set_path("scenarios/1/baseline/samples/2/ok", 1)),
        ("failed without error", set_path("scenarios/0/baseline/samples/0", {"ok": False})),
        ("extra sample key", set_path("scenarios/0/baseline/samples/0/cost", 3)),
        ("extra root key", set_path("extra", 1)),
        ("missing id", set_path("scenarios/0/id", _DELETE)),
        ("candidate missing", set_path("scenarios/1/candidate", _DELETE)),
    ]


_DELETE = object()


@pytest.mark.parametrize(("name", "mutate"), _mutations(), ids=[m[0] for m in _mutations()])
def test_both_validators_reject_each_malformation(
    report_dict: dict[str, Any], name: str, mutate: Any
) -> None:
    doc = copy.deepcopy(report_dict)
    mutate(doc)
    assert not _schema_ok(doc), name
    assert not _parser_ok(doc), name


def test_failed_samples_are_valid(report_dict: dict[str, Any]) -> None:
    doc = copy.deepcopy(report_dict)
    doc["scenarios"][0]["candidate"]["samples"][0] = {"ok": False, "error": "timeout"}
    assert _schema_ok(doc)
    assert _parser_ok(doc)


def test_duplicate_ids_are_rejected(report_dict: dict[str, Any]) -> None:
    doc = copy.deepcopy(report_dict)
    doc["scenarios"][1]["id"] = doc["scenarios"][0]["id"]
    with pytest.raises(ReportError, match=r"\$\.scenarios\[1\]\.id: duplicate"):
        parse_report(doc)


def test_error_names_the_json_path(report_dict: dict[str, Any]) -> None:
    doc = copy.deepcopy(report_dict)
    doc["scenarios"][1]["baseline"]["samples"][2]["latency_ms"] = -5
    with pytest.raises(
        ReportError, match=r"\$\.scenarios\[1\]\.baseline\.samples\[2\]\.latency_ms"
    ):
        parse_report(doc)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "not valid UTF-8 JSON"),
        (b"\xff\xfe{}", "not valid UTF-8 JSON"),
        (b"{not json", "not valid UTF-8 JSON"),
        (b'{"x": NaN}', "not valid UTF-8 JSON"),
        (b"[]", "must be an object"),
    ],
)
def test_bad_files_raise_report_error(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "r.json"
    path.write_bytes(content)
    with pytest.raises(ReportError, match=match):
        load_report(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="No such file"):
        load_report(tmp_path / "absent.json")


def test_file_round_trip(tmp_path: Path, report_dict: dict[str, Any]) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(report_dict))
    assert load_report(path).to_json() == report_dict


@pytest.mark.parametrize("tokens", [10**12 + 1, 10**400], ids=["above-max", "beyond-float"])
def test_token_counts_are_bounded(report_dict: dict[str, Any], tokens: int) -> None:
    """A count beyond any real completion would overflow the statistics' float arrays."""
    doc = copy.deepcopy(report_dict)
    doc["scenarios"][0]["candidate"]["samples"][1]["output_tokens"] = tokens
    with pytest.raises(ReportError, match=r"samples\[1\]\.output_tokens: must be an integer in"):
        parse_report(doc)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, report_schema())


def test_a_huge_integer_latency_is_a_report_error(report_dict: dict[str, Any]) -> None:
    doc = copy.deepcopy(report_dict)
    doc["scenarios"][0]["baseline"]["samples"][0]["latency_ms"] = 10**5000
    with pytest.raises(ReportError, match=r"latency_ms: must be a finite number >= 0, got an"):
        parse_report(doc)
