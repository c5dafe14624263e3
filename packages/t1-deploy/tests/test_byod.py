"""Your own search system in TREC formats: readers, nDCG@10 against ir-measures, the CLI end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from t1_deploy.cli import main
from t1_deploy.errors import FormatError
from t1_deploy.package import DeploymentConfig
from t1_deploy.trec import ndcg_cut, read_latency, read_qrels, read_router_log, read_run

N_DOCS = 60


def _rankers(
    n_queries: int, gain: float, seed: int = 0
) -> tuple[dict[str, dict[str, int]], dict[str, list[str]], dict[str, list[str]]]:
    """Graded qrels and two rankers: T0 a noisy ranker, T1 = T0 with a share of queries fixed.

    T1 moves the best-graded document to rank 1 on enough queries to plant about `gain` (nDCG@10,
    absolute) on average; the planted gain is measured, not assumed, by the caller.
    """
    rng = np.random.default_rng(seed)
    qrels, t0, t1 = {}, {}, {}
    for q in range(n_queries):
        qid = f"q{q}"
        grades = {f"d{d}": int(g) for d, g in enumerate(rng.choice([1, 2, 3], size=4))}
        qrels[qid] = grades
        docs = [f"d{d}" for d in rng.permutation(N_DOCS)[:20]]
        t0[qid] = docs
        t1[qid] = list(docs)
    ndcg0 = np.mean([ndcg_cut(t0[q], qrels[q]) for q in qrels])
    order = rng.permutation(n_queries)
    for q in order:
        if np.mean([ndcg_cut(t1[k], qrels[k]) for k in qrels]) - ndcg0 >= gain:
            break
        qid = f"q{q}"
        ideal = sorted(qrels[qid], key=lambda d: -qrels[qid][d])
        t1[qid] = ideal + [d for d in t1[qid] if d not in ideal]
    return qrels, t0, t1


def _write(tmp: Path, qrels: dict, t0: dict, t1: dict) -> dict[str, Path]:  # type: ignore[type-arg]
    from t1_deploy.trec import write_qrels, write_run

    paths = {"qrels": tmp / "qrels.txt", "t0": tmp / "t0.run", "t1": tmp / "t1.run"}
    write_qrels(paths["qrels"], qrels)
    write_run(paths["t0"], t0, "t0")
    write_run(paths["t1"], t1, "t1")
    return paths


def _cli(paths: dict[str, Path], out: Path, *extra: str) -> int:
    return main(
        [
            "run",
            "--qrels",
            str(paths["qrels"]),
            "--t0-run",
            str(paths["t0"]),
            "--t1-run",
            str(paths["t1"]),
            "--out",
            str(out),
            *extra,
        ]
    )


def test_ndcg_matches_ir_measures_with_graded_gains_and_ties(tmp_path: Path) -> None:
    """Same files, per query: ours vs ir-measures' nDCG@10 (trec_eval's ndcg_cut_10)."""
    import ir_measures

    rng = np.random.default_rng(3)
    lines_q, lines_r = [], []
    for q in range(40):
        for d in rng.choice(30, size=8, replace=False):
            lines_q.append(f"q{q} 0 d{d} {rng.integers(0, 4)}")
        for rank, d in enumerate(rng.choice(30, size=15, replace=False), start=1):
            score = float(rng.integers(0, 5))  # many tied scores: trec_eval breaks ties by docid
            lines_r.append(f"q{q} Q0 d{d} {rank} {score} tag")
    (tmp_path / "q.txt").write_text("\n".join(lines_q) + "\n")
    (tmp_path / "r.run").write_text("\n".join(lines_r) + "\n")
    qrels, run = read_qrels(tmp_path / "q.txt"), read_run(tmp_path / "r.run")
    theirs = {
        m.query_id: m.value
        for m in ir_measures.iter_calc(
            [ir_measures.nDCG @ 10],
            ir_measures.read_trec_qrels(str(tmp_path / "q.txt")),
            ir_measures.read_trec_run(str(tmp_path / "r.run")),
        )
    }
    ours = {q: ndcg_cut(run[q], qrels[q]) for q in run if any(g > 0 for g in qrels[q].values())}
    assert set(theirs) == set(ours)
    for q, value in ours.items():
        assert value == pytest.approx(theirs[q], abs=1e-9), q


def test_planted_gain_authorises_and_identical_runs_block(tmp_path: Path) -> None:
    qrels, t0, t1 = _rankers(400, gain=0.03)
    paths = _write(tmp_path, qrels, t0, t1)
    assert _cli(paths, tmp_path / "gain") == 0
    report = json.loads((tmp_path / "gain" / "release_report.json").read_text())
    delta = report["ndcg_at_10"]["t1"] - report["ndcg_at_10"]["t0"]
    assert 0.03 <= delta < 0.04
    assert report["verdict"] == "AUTHORISED"
    statuses = {g["name"]: g["status"] for g in report["contract"]["guards"]}
    assert statuses["noninferiority_global"] == "passed"
    # Inputs not given: their guards are not evaluated, never passed.
    assert statuses["jaccard_at_10_routed"] == "not_evaluated"
    assert statuses["p95_ratio_vs_t0"] == "not_evaluated"
    assert (tmp_path / "gain" / "T1_release_contract.md").exists()
    same = _write(tmp_path, qrels, t0, t0)
    assert _cli(same, tmp_path / "same") == 1
    report = json.loads((tmp_path / "same" / "release_report.json").read_text())
    assert report["verdict"] == "BLOCKED"


def test_noninferiority_margin_is_explicit(tmp_path: Path) -> None:
    """Identical runs fail superiority (δ = 0) but pass non-inferiority with δ = 0.01."""
    qrels, t0, _ = _rankers(100, gain=0.0)
    paths = _write(tmp_path, qrels, t0, t0)
    assert _cli(paths, tmp_path / "sup") == 1
    assert _cli(paths, tmp_path / "ni", "--noninferiority-margin", "0.01") == 0


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("qrels", "q1 0 d1\n", "qrels.txt:1: expected 4 fields"),
        ("qrels", "q1 0 d1 1\nq1 0 d2 high\n", "qrels.txt:2: rel must be an integer"),
        ("t0", "q1 Q0 d1 1 0.5 tag\nq1 Q0 d2 x 0.4 tag\n", "t0.run:2: rank must be an integer"),
        ("t0", "q1 Q0 d1 1 nan tag\n", "t0.run:1: score must be finite"),
        ("t1", "q1 Q0 d1 1 0.5 tag\nq1 Q0 d1 2 0.4 tag\n", "t1.run:2: document 'd1' ranked twice"),
    ],
)
def test_malformed_line_exits_2_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: str, expected: str
) -> None:
    qrels, t0, t1 = _rankers(20, gain=0.03)
    paths = _write(tmp_path, qrels, t0, t1)
    paths[name].write_text(content)
    assert _cli(paths, tmp_path / "out") == 2
    assert expected in capsys.readouterr().err


def test_side_files_are_checked(tmp_path: Path) -> None:
    (tmp_path / "lat.csv").write_text("qid,stage,latency_ms\nq1,t0,1.5\nq1,t2,1.0\n")
    with pytest.raises(FormatError, match=r"lat.csv:3: stage must be t0 or t1"):
        read_latency(tmp_path / "lat.csv")
    (tmp_path / "lat.csv").write_text("qid,latency_ms\n")
    with pytest.raises(FormatError, match=r"lat.csv:1: header must be qid,stage,latency_ms"):
        read_latency(tmp_path / "lat.csv")
    (tmp_path / "r.csv").write_text("qid,upshift,propensity\nq1,1,0\n")
    with pytest.raises(FormatError, match=r"r.csv:2: propensity must be in \(0, 1\]"):
        read_router_log(tmp_path / "r.csv")
    (tmp_path / "r.csv").write_text("qid,upshift,propensity,confidence\nq1,1,0.9,1.5\n")
    with pytest.raises(FormatError, match=r"r.csv:2: confidence must be in \[0, 1\]"):
        read_router_log(tmp_path / "r.csv")
    with pytest.raises(FormatError, match="cannot read"):
        read_qrels(tmp_path / "absent.txt")


def test_missing_queries_count_as_empty_rankings_and_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    qrels, t0, t1 = _rankers(50, gain=0.03)
    del t1["q0"]
    paths = _write(tmp_path, qrels, t0, t1)
    _cli(paths, tmp_path / "out")
    report = json.loads((tmp_path / "out" / "release_report.json").read_text())
    assert report["coverage"]["missing_from_t1_run"] == ["q0"]
    rows = (tmp_path / "out" / "per_query.csv").read_text().splitlines()
    q0 = next(r for r in rows if r.startswith("q0,"))
    assert q0.split(",")[2] == "0.0"  # ndcg_t1 of the empty ranking
    assert main(["run", "--qrels", str(paths["qrels"]), "--out", str(tmp_path / "x")]) == 2
    assert "--t0-run" in capsys.readouterr().err
    router = tmp_path / "router.csv"
    router.write_text("qid,upshift,propensity\nq1,1,0.5\n")
    assert _cli(paths, tmp_path / "y", "--router-log", str(router)) == 2
    assert "no decision for" in capsys.readouterr().err


def test_reference_system_is_one_producer_of_the_files(
    tmp_path: Path, tiny_deployment_config: DeploymentConfig
) -> None:
    """`reference export` writes the standard files; `run` on them evaluates every guard."""
    from t1_deploy.reference.export import export_reference
    from t1_deploy.trec import read_queries

    files = tmp_path / "files"
    summary = export_reference(files, tiny_deployment_config, epsilon=0.2, repeats=2)
    log = read_router_log(files / "router.csv")
    assert len(log) == summary["queries"]
    for d in log.values():  # ε-greedy: the logged action had probability 1 − ε/2 or ε/2
        assert d.propensity in (pytest.approx(0.9), pytest.approx(0.1))
    latency = read_latency(files / "latency.csv")
    assert all(len(v["t0"]) == 2 and len(v["t1"]) == 2 for v in latency.values())
    assert {t for q in read_queries(files / "queries.tsv").values() for t in q.slices} <= {
        "hard_nl",
        "general",
    }
    args = [
        f"--{n}={files / f}"
        for n, f in (
            ("queries", "queries.tsv"),
            ("latency", "latency.csv"),
            ("router-log", "router.csv"),
            ("t1-exact-run", "t1_exact.run"),
        )
    ]
    paths = {"qrels": files / "qrels.txt", "t0": files / "t0.run", "t1": files / "t1.run"}
    code = _cli(paths, tmp_path / "out", *args)
    report = json.loads((tmp_path / "out" / "release_report.json").read_text())
    assert code == (0 if report["verdict"] == "AUTHORISED" else 1)
    statuses = {g["name"]: g["status"] for g in report["contract"]["guards"]}
    for name in ("noninferiority_global", "jaccard_at_10_routed", "aece_drift", "p95_ratio_vs_t0"):
        assert statuses[name] != "not_evaluated", (name, report["contract"]["guards"])
