"""``fusion-budget ingest``: OTLP JSON, SDK span JSON and plain usage records into a report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from fusion_ops import cli
from fusion_ops.errors import IngestError
from fusion_ops.ingest import ingest_report, read_log
from fusion_ops.report import load_report, parse_report, report_schema

OTLP = Path(__file__).resolve().parent / "data" / "otlp_genai_spans.json"


def _sdk_span(
    scenario: str, tokens: tuple[int, int] | None, ms: int, error: bool = False
) -> dict[str, Any]:
    """A span as opentelemetry-sdk's ReadableSpan.to_json() writes it."""
    attrs: dict[str, Any] = {"gen_ai.request.model": "claude-haiku-4-5", "app.scenario": scenario}
    if tokens is not None:
        attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"] = tokens
    return {
        "name": "chat claude-haiku-4-5",
        "context": {"trace_id": "0x5b8e", "span_id": "0xeee1", "trace_state": "[]"},
        "kind": "SpanKind.CLIENT",
        "parent_id": None,
        "start_time": "2026-12-01T10:00:00.000000Z",
        "end_time": f"2026-12-01T10:00:0{ms // 1000}.{ms % 1000:03d}000Z",
        "status": {
            "status_code": "ERROR" if error else "UNSET",
            "description": "boom" if error else None,
        },
        "attributes": attrs,
        "events": [],
        "links": [],
        "resource": {"attributes": {"service.name": "ticket-bot"}, "schema_url": ""},
    }


@pytest.fixture
def candidate(tmp_path: Path) -> Path:
    """JSON Lines mixing SDK spans and plain usage records (Anthropic ``usage`` shape)."""
    lines = [
        _sdk_span("triage", (1500, 330), 1250),
        _sdk_span("triage", (1490, 350), 1100),
        _sdk_span("triage", None, 900, error=True),
        {
            "app.scenario": "summarize",
            "model": "claude-haiku-4-5",
            "usage": {"input_tokens": 420, "output_tokens": 125, "cache_creation_input_tokens": 9},
            "latency_ms": 333.5,
        },
        {
            "attributes": {"app.scenario": "summarize"},
            "input_tokens": 415,
            "output_tokens": 119,
            "duration_ms": 340,
        },
        {"app.scenario": "candidate-only", "input_tokens": 1, "output_tokens": 1, "latency_ms": 1},
    ]
    path = tmp_path / "candidate.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    return path


def test_otlp_json_file_gives_exact_samples() -> None:
    records = [r for r in read_log(OTLP, group_by="app.scenario") if not isinstance(r, str)]
    skipped = [r for r in read_log(OTLP, group_by="app.scenario") if isinstance(r, str)]
    assert sorted(skipped) == ["no_usage", "not_genai"]
    triage = [r.sample for r in records if r.group == "triage"]
    assert [(s.ok, s.input_tokens, s.output_tokens, s.latency_ms) for s in triage] == [
        (True, 1200, 310, 812.5),
        (True, 1185, 290, 790.25),
        (False, None, None, 30.0),
    ]
    assert triage[0].cache_read_input_tokens == 800
    assert triage[2].error == "overloaded_error"
    assert {r.model for r in records} == {"claude-haiku-4-5"}


def test_ingest_builds_a_valid_report_grouped_by_the_attribute(candidate: Path) -> None:
    report = ingest_report([OTLP], [candidate], group_by="app.scenario")
    document = report.to_json()
    jsonschema.validate(document, report_schema())
    assert parse_report(json.loads(json.dumps(document))) == report
    by_id = {s.id: s for s in report.scenarios}
    assert sorted(by_id) == ["summarize", "triage"]
    cand = by_id["triage"].candidate
    assert [(s.input_tokens, s.output_tokens, s.latency_ms) for s in cand[:2]] == [
        (1500, 330, 1250.0),
        (1490, 350, 1100.0),
    ]
    assert cand[2].error == "boom"
    summarize = by_id["summarize"].candidate
    assert (summarize[0].input_tokens, summarize[0].cache_creation_input_tokens) == (420, 9)
    assert summarize[1].latency_ms == 340.0
    info = report.metadata["ingest"]
    assert info["used"] == {"baseline": 6, "candidate": 6}
    assert info["skipped"]["baseline"] == {"not_genai": 1, "no_usage": 1, "no_group": 0}
    assert info["dropped_scenarios"] == {
        "baseline_only": ["baseline-only"],
        "candidate_only": ["candidate-only"],
    }
    assert report.metadata["model"] == "claude-haiku-4-5"
    assert report.metadata["runs_per_side"] == 2


def test_same_logs_same_report_and_the_hash_follows_the_bytes(
    candidate: Path, tmp_path: Path
) -> None:
    first = ingest_report([OTLP], [candidate], group_by="app.scenario")
    again = ingest_report([OTLP], [candidate], group_by="app.scenario")
    assert first.scenarios == again.scenarios
    changed = tmp_path / "changed.jsonl"
    changed.write_text(candidate.read_text() + json.dumps(_sdk_span("triage", (1, 1), 5)) + "\n")
    other = ingest_report([OTLP], [changed], group_by="app.scenario")
    assert other.metadata["candidate"]["config_hash"] != first.metadata["candidate"]["config_hash"]


def test_memory_is_bounded_by_a_seeded_reservoir(tmp_path: Path) -> None:
    big = tmp_path / "big.jsonl"
    big.write_text(
        "".join(
            json.dumps({"scenario": "s", "input_tokens": i, "output_tokens": 1, "latency_ms": 1})
            + "\n"
            for i in range(500)
        )
    )
    report = ingest_report([big], [big], group_by="scenario", max_samples=50)
    kept = [s.input_tokens or 0 for s in report.scenarios[0].baseline]
    assert len(kept) == 50
    assert len(set(kept)) == 50
    assert max(kept) > 100  # later records get in, not just the first 50
    assert report.metadata["ingest"]["sampled"] == {
        "s": {"baseline": [50, 500], "candidate": [50, 500]}
    }
    assert (
        ingest_report([big], [big], group_by="scenario", max_samples=50).scenarios
        == report.scenarios
    )


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (
            '{"scenario": "s", "input_tokens": 1, "output_tokens": 2, "latency_ms": 1}\n{oops\n',
            r":2: not valid UTF-8 JSON",
        ),
        (
            '{"scenario": "s", "input_tokens": -1, "output_tokens": 2, "latency_ms": 1}\n',
            r":1: input_tokens must be an integer in \[0, ",
        ),
        (
            '{"scenario": "s", "input_tokens": 1.5, "output_tokens": 2, "latency_ms": 1}\n',
            "input_tokens",
        ),
        ('{"scenario": "s", "input_tokens": 1, "output_tokens": 2, "latency_ms": NaN}\n', "NaN"),
        ('{"scenario": "s", "input_tokens": 1, "output_tokens": 2}\n', "latency_ms"),
        ('{"scenario": "s", "output_tokens": 2, "latency_ms": 3}\n', "input_tokens is missing"),
        (
            '{"resourceSpans": [{"scopeSpans": [{"spans": [{"attributes": []}]}]}]}\n',
            "startTimeUnixNano",
        ),
        ('{"hello": 1}\n', "not a usage record"),
        ("[1, 2]", "expected a JSON object"),
        ('{\n "resourceSpans": 3\n}\n', "resourceSpans must be an array"),
    ],
)
def test_malformed_logs_name_file_line_and_field(tmp_path: Path, content: str, match: str) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content)
    with pytest.raises(IngestError, match=match) as info:
        ingest_report([bad], [OTLP], group_by="scenario")
    assert "bad.jsonl" in str(info.value)


def test_plain_records_group_by_model_by_default(tmp_path: Path) -> None:
    log = tmp_path / "usage.jsonl"
    log.write_text(
        json.dumps({"model": "m1", "input_tokens": 3, "output_tokens": 4, "latency_ms": 5}) + "\n"
    )
    report = ingest_report([log], [log])
    assert [s.id for s in report.scenarios] == ["m1"]
    assert report.scenarios[0].baseline[0].total_tokens == 7


def test_missing_file_and_no_common_scenario(tmp_path: Path, candidate: Path) -> None:
    with pytest.raises(IngestError, match=r"nope\.jsonl"):
        ingest_report([tmp_path / "nope.jsonl"], [candidate], group_by="app.scenario")
    with pytest.raises(IngestError, match="no scenario"):
        ingest_report([OTLP], [candidate], group_by="no.such.attribute")


def test_cli_ingest_then_analyze(
    candidate: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    code = cli.main(
        [
            "ingest",
            "--baseline",
            str(OTLP),
            "--candidate",
            str(candidate),
            "--group-by",
            "app.scenario",
            "-o",
            str(out),
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert "2 scenarios grouped by 'app.scenario'" in captured.out
    assert "baseline-only" in captured.err
    assert load_report(out).metadata["ingest"]["group_by"] == "app.scenario"
    code = cli.main(["analyze", "--report-file", str(out), "--output-format", "json"])
    assert code in (0, 1, 2)
    assert json.loads(capsys.readouterr().out)["status"] in {"pass", "warn", "block", "error"}
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n")
    assert (
        cli.main(["ingest", "--baseline", str(bad), "--candidate", str(candidate), "-o", str(out)])
        == 2
    )
