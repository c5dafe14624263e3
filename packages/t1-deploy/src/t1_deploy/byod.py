"""`t1-deploy run --qrels ... --t0-run ... --t1-run ...`: the release contract on your own files.

Evaluated queries are the qrels' queries with at least one positive grade; a query missing from a
run counts as an empty ranking (nDCG 0) and is reported. The candidate serves T1 to the queries the
router log upshifted (every query when there is no router log) and T0 to the rest. Each input that
is absent, or too small, leaves the guards that need it "not evaluated", with the reason.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from t1_deploy._io import atomic_write_text, write_json
from t1_deploy.contract import (
    BaselineMetrics,
    CandidateEvidence,
    ContractResult,
    ProductionGuards,
    T1ReleaseContract,
)
from t1_deploy.errors import FormatError
from t1_deploy.reference.dataset import nl_confidence
from t1_deploy.trec import (
    Query,
    jaccard_top,
    ndcg_cut,
    read_latency,
    read_qrels,
    read_queries,
    read_router_log,
    read_run,
)

HARD_NL_TAG = "hard_nl"


@dataclass(frozen=True)
class InputFiles:
    qrels: Path
    t0_run: Path
    t1_run: Path
    queries: Path | None = None
    latency: Path | None = None
    router_log: Path | None = None
    t1_exact_run: Path | None = None


def _padded(rows: list[list[float]]) -> npt.NDArray[np.float64]:
    width = max(len(r) for r in rows)
    out = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def hard_nl_slice(query: Query) -> bool:
    """Tagged `hard_nl` in the queries file; untagged files: text with no identifier-like word."""
    return HARD_NL_TAG in query.slices or (not query.slices and nl_confidence(query.text) == 1.0)


def evaluate_files(
    files: InputFiles, guards: ProductionGuards | None = None
) -> tuple[T1ReleaseContract, ContractResult, dict[str, Any], list[dict[str, Any]]]:
    """Read, check and evaluate; returns the contract, its result, coverage notes, per-query rows."""
    qrels = read_qrels(files.qrels)
    t0, t1 = read_run(files.t0_run), read_run(files.t1_run)
    qids = sorted(q for q, docs in qrels.items() if any(g > 0 for g in docs.values()))
    if len(qids) < 2:
        raise FormatError(f"{files.qrels}: {len(qids)} queries with a relevant document; need 2")
    coverage: dict[str, Any] = {
        "evaluated_queries": len(qids),
        "qrels_queries_without_relevant": len(qrels) - len(qids),
        "missing_from_t0_run": sorted(set(qids) - set(t0)),
        "missing_from_t1_run": sorted(set(qids) - set(t1)),
        "run_queries_not_in_qrels": len((set(t0) | set(t1)) - set(qrels)),
    }
    ndcg_t0 = np.array([ndcg_cut(t0.get(q, []), qrels[q]) for q in qids])
    ndcg_t1 = np.array([ndcg_cut(t1.get(q, []), qrels[q]) for q in qids])
    routed = np.ones(len(qids), dtype=bool)
    confidence: npt.NDArray[np.float64] | None = None
    order: npt.NDArray[np.int64] | None = None
    if files.router_log is not None:
        log = read_router_log(files.router_log)
        missing = [q for q in qids if q not in log]
        if missing:
            raise FormatError(
                f"{files.router_log}: no decision for {len(missing)} evaluated queries "
                f"(first: {missing[0]!r}); the candidate is undefined for them"
            )
        routed = np.array([log[q].upshift for q in qids])
        order = np.array([log[q].order for q in qids])
        if all(log[q].confidence is not None for q in qids):
            confidence = np.array([log[q].confidence for q in qids], dtype=float)
        coverage["router_log"] = {
            "upshifted": int(routed.sum()),
            "propensity_min": min(log[q].propensity for q in qids),
        }
    candidate = np.where(routed, ndcg_t1, ndcg_t0)
    hard_nl = None
    if files.queries is not None:
        queries = read_queries(files.queries)
        coverage["missing_from_queries"] = len([q for q in qids if q not in queries])
        hard_nl = np.array([q in queries and hard_nl_slice(queries[q]) for q in qids])
    jaccard = None
    if files.t1_exact_run is not None:
        exact = read_run(files.t1_exact_run)
        jaccard = np.array([jaccard_top(t1.get(q, []), exact.get(q, [])) for q in qids])
    reps_cand = reps_base = None
    if files.latency is not None:
        lat = read_latency(files.latency)
        lacking = [
            q
            for q, up in zip(qids, routed, strict=True)
            if "t0" not in lat.get(q, {}) or (up and "t1" not in lat.get(q, {}))
        ]
        coverage["missing_latency"] = len(lacking)
        if not lacking:
            reps_base = _padded([lat[q]["t0"] for q in qids])
            reps_cand = _padded(
                [lat[q]["t1" if up else "t0"] for q, up in zip(qids, routed, strict=True)]
            )
    benefit = (ndcg_t1 > ndcg_t0).astype(float)
    ref_conf = ref_benefit = window = None
    if confidence is not None and order is not None:
        # The log's first half (in logged order) is the reference window, the second the current.
        by_time = np.argsort(order)
        ref = by_time[: len(by_time) // 2]
        ref_conf, ref_benefit = confidence[ref], benefit[ref]
        window = np.ones(len(qids), dtype=bool)
        window[ref] = False
    g = guards or ProductionGuards()
    baseline = BaselineMetrics(
        ndcg=float(ndcg_t0.mean()),
        p95_ms=float(np.percentile(np.nanmedian(reps_base, axis=1), 95))
        if reps_base is not None
        else float("nan"),
        aece_reference=float("nan"),
        n_queries=len(qids),
        reference_confidence=ref_conf,
        reference_benefit=ref_benefit,
    )
    evidence = CandidateEvidence(
        ndcg_candidate=candidate,
        ndcg_baseline=ndcg_t0,
        hard_nl=hard_nl,
        jaccard=jaccard,
        router_confidence=confidence,
        realised_benefit=None if confidence is None else benefit,
        routed=routed,
        current_window=window,
        latency_candidate_reps=reps_cand,
        latency_baseline_reps=reps_base,
    )
    contract = T1ReleaseContract(baseline, g)
    result = contract.validate_release_contract(evidence)
    rows = [
        {
            "qid": q,
            "ndcg_t0": float(ndcg_t0[i]),
            "ndcg_t1": float(ndcg_t1[i]),
            "routed_t1": bool(routed[i]),
            "ndcg_candidate": float(candidate[i]),
            "hard_nl": None if hard_nl is None else bool(hard_nl[i]),
            "jaccard_t1_exact": None if jaccard is None else float(jaccard[i]),
        }
        for i, q in enumerate(qids)
    ]
    return contract, result, coverage, rows


def write_report(
    out: Path,
    contract: T1ReleaseContract,
    result: ContractResult,
    coverage: dict[str, Any],
    rows: list[dict[str, Any]],
    files: InputFiles,
) -> dict[str, Any]:
    out = Path(out)
    contract.generate_release_contract_document(out / "T1_release_contract.md")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "per_query.csv", buffer.getvalue())
    from t1_deploy.package import finite_json

    report = {
        "schema_version": "1.0",
        "kind": "t1_release_report",
        "inputs": {k: None if v is None else str(v) for k, v in files.__dict__.items()},
        "verdict": result.verdict,
        "deployment_ready": result.authorised,
        "ndcg_at_10": {
            "t0": float(np.mean([r["ndcg_t0"] for r in rows])),
            "t1": float(np.mean([r["ndcg_t1"] for r in rows])),
            "candidate": float(np.mean([r["ndcg_candidate"] for r in rows])),
        },
        "coverage": coverage,
        "contract": contract.to_dict(),
    }
    report = finite_json(report)
    write_json(out / "release_report.json", report)
    return dict(report)
