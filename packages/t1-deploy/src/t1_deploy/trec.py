"""Readers for the IR ecosystem's files, and trec_eval's nDCG@k on them.

- qrels (TREC): `qid iter docid rel`, whitespace-separated, `rel` an integer grade (graded).
- run (TREC): `qid Q0 docid rank score tag`. As in trec_eval, the order of a query's documents is
  by score (descending), ties by docid (descending); the rank column is checked but not used.
- queries: `qid<TAB>text[<TAB>slices]`, slices a comma-separated list of tags (e.g. `hard_nl`).
- latency CSV with header `qid,stage,latency_ms`: stage `t0` or `t1`, the end-to-end latency of
  serving the query with that stage; repeated rows are repeated measurements.
- router log CSV with header `qid,upshift,propensity[,confidence]`, one row per decision in the
  order it was logged: upshift 0/1, propensity = the probability the router gave the logged
  action (0, 1], confidence = the router's score in [0, 1] that upshifting helps (optional).

Every malformed line raises `FormatError` naming the file and the line number.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from t1_deploy.errors import FormatError

MAX_FILE_BYTES = 2_000_000_000
Qrels = dict[str, dict[str, int]]
Run = dict[str, list[str]]  # qid -> docids in ranked order


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise FormatError(f"{path}: cannot read: {exc.strerror}") from exc
    if size > MAX_FILE_BYTES:
        raise FormatError(f"{path}: {size} bytes, more than the {MAX_FILE_BYTES} allowed")
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield number, line.rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{path}: not UTF-8 text ({exc.reason})") from exc


def _int(path: Path, number: int, field: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise FormatError(f"{path}:{number}: {field} must be an integer, got {text!r}") from None


def _float(path: Path, number: int, field: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise FormatError(f"{path}:{number}: {field} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise FormatError(f"{path}:{number}: {field} must be finite, got {text!r}")
    return value


def read_qrels(path: Path) -> Qrels:
    qrels: Qrels = {}
    for number, line in _lines(path):
        parts = line.split()
        if len(parts) != 4:
            raise FormatError(
                f"{path}:{number}: expected 4 fields 'qid iter docid rel', got {len(parts)}"
            )
        qid, _, docid, rel = parts
        docs = qrels.setdefault(qid, {})
        if docid in docs:
            raise FormatError(f"{path}:{number}: document {docid!r} judged twice for {qid!r}")
        docs[docid] = _int(path, number, "rel", rel)
    if not qrels:
        raise FormatError(f"{path}: no judgements")
    return qrels


def read_run(path: Path) -> Run:
    scored: dict[str, dict[str, tuple[float, str]]] = {}
    for number, line in _lines(path):
        parts = line.split()
        if len(parts) != 6:
            raise FormatError(
                f"{path}:{number}: expected 6 fields 'qid Q0 docid rank score tag', "
                f"got {len(parts)}"
            )
        qid, _, docid, rank, score, _ = parts
        _int(path, number, "rank", rank)
        docs = scored.setdefault(qid, {})
        if docid in docs:
            raise FormatError(f"{path}:{number}: document {docid!r} ranked twice for {qid!r}")
        docs[docid] = (_float(path, number, "score", score), docid)
    if not scored:
        raise FormatError(f"{path}: no ranked documents")
    return {
        qid: [d for _, d in sorted(docs.values(), reverse=True)] for qid, docs in scored.items()
    }


@dataclass(frozen=True)
class Query:
    text: str
    slices: frozenset[str]


def read_queries(path: Path) -> dict[str, Query]:
    queries: dict[str, Query] = {}
    for number, line in _lines(path):
        parts = line.split("\t")
        if len(parts) not in (2, 3) or not parts[0].strip():
            raise FormatError(
                f"{path}:{number}: expected 'qid<TAB>text[<TAB>slices]', got {len(parts)} fields"
            )
        qid = parts[0].strip()
        if qid in queries:
            raise FormatError(f"{path}:{number}: query {qid!r} given twice")
        slices = (
            frozenset(s.strip() for s in parts[2].split(",") if s.strip())
            if len(parts) == 3
            else frozenset()
        )
        queries[qid] = Query(parts[1], slices)
    return queries


def _csv_rows(
    path: Path, required: Sequence[str], optional: Sequence[str] = ()
) -> Iterator[tuple[int, dict[str, str]]]:
    lines = _lines(path)
    try:
        header_number, header_line = next(lines)
    except StopIteration:
        raise FormatError(f"{path}: empty file (expected a header {','.join(required)})") from None
    header = [h.strip() for h in next(csv.reader([header_line]))]
    if header[: len(required)] != list(required) or any(
        h not in optional for h in header[len(required) :]
    ):
        raise FormatError(
            f"{path}:{header_number}: header must be {','.join(required)}"
            + (f"[,{','.join(optional)}]" if optional else "")
            + f", got {','.join(header)}"
        )
    for number, line in lines:
        cells = [c.strip() for c in next(csv.reader([line]))]
        if len(cells) != len(header):
            raise FormatError(f"{path}:{number}: expected {len(header)} fields, got {len(cells)}")
        yield number, dict(zip(header, cells, strict=True))


def read_latency(path: Path) -> dict[str, dict[str, list[float]]]:
    """qid -> stage -> repeated latency measurements (ms)."""
    out: dict[str, dict[str, list[float]]] = {}
    for number, row in _csv_rows(path, ("qid", "stage", "latency_ms")):
        if row["stage"] not in ("t0", "t1"):
            raise FormatError(f"{path}:{number}: stage must be t0 or t1, got {row['stage']!r}")
        value = _float(path, number, "latency_ms", row["latency_ms"])
        if value < 0:
            raise FormatError(f"{path}:{number}: latency_ms must be >= 0, got {value}")
        out.setdefault(row["qid"], {}).setdefault(row["stage"], []).append(value)
    return out


@dataclass(frozen=True)
class RouterDecision:
    upshift: bool
    propensity: float
    confidence: float | None
    order: int  # position in the log (0 = first logged)


def read_router_log(path: Path) -> dict[str, RouterDecision]:
    out: dict[str, RouterDecision] = {}
    for number, row in _csv_rows(path, ("qid", "upshift", "propensity"), ("confidence",)):
        if row["upshift"] not in ("0", "1"):
            raise FormatError(f"{path}:{number}: upshift must be 0 or 1, got {row['upshift']!r}")
        p = _float(path, number, "propensity", row["propensity"])
        if not 0.0 < p <= 1.0:
            raise FormatError(f"{path}:{number}: propensity must be in (0, 1], got {p}")
        conf = None
        if "confidence" in row:
            conf = _float(path, number, "confidence", row["confidence"])
            if not 0.0 <= conf <= 1.0:
                raise FormatError(f"{path}:{number}: confidence must be in [0, 1], got {conf}")
        if row["qid"] in out:
            raise FormatError(f"{path}:{number}: query {row['qid']!r} logged twice")
        out[row["qid"]] = RouterDecision(row["upshift"] == "1", p, conf, len(out))
    return out


def ndcg_cut(ranking: Sequence[str], judged: dict[str, int], k: int = 10) -> float:
    """trec_eval's ndcg_cut_k: DCG with linear graded gains rel / log2(rank + 1) over the top k,
    divided by the DCG of the ideal ordering of the judged grades; negative grades give 0."""
    dcg = sum(max(judged.get(doc, 0), 0) / math.log2(i + 2) for i, doc in enumerate(ranking[:k]))
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def jaccard_top(a: Sequence[str], b: Sequence[str], k: int = 10) -> float:
    sa, sb = set(a[:k]), set(b[:k])
    union = sa | sb
    return 1.0 if not union else len(sa & sb) / len(union)


def write_qrels(path: Path, qrels: Qrels) -> None:
    lines = [f"{q} 0 {d} {rel}" for q, docs in qrels.items() for d, rel in docs.items()]
    _write(path, lines)


def write_run(path: Path, run: Run, tag: str) -> None:
    """Scores are k + 1 − rank, so score order (trec_eval's) is the ranked order."""
    lines = [
        f"{q} Q0 {d} {r} {len(docs) + 1 - r} {tag}"
        for q, docs in run.items()
        for r, d in enumerate(docs, start=1)
    ]
    _write(path, lines)


def _write(path: Path, lines: list[str]) -> None:
    from t1_deploy._io import atomic_write_text

    atomic_write_text(Path(path), "\n".join(lines) + "\n")
