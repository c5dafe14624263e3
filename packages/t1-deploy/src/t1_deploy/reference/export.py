"""`t1-deploy reference export DIR`: the reference system as one producer of the standard files.

Writes, for the test split: `qrels.txt` (one relevant function per query, grade 1), `t0.run`
(BM25), `t1.run` (HNSW + fusion), `t1_exact.run` (exact search + fusion: the Jaccard reference),
`queries.tsv` (slices `hard_nl` or `general`), `latency.csv` (`repeats` end-to-end measurements per
query and stage; t1 = T0 then T1) and `router.csv`: the distilled router (trained on the train split,
θ* gated on the validation split) deciding each test query ε-greedily — the greedy action is
"upshift iff τ̂ ≥ θ*", with probability ε a fair coin decides instead — and logging the decision,
the real probability of the logged action and its confidence τ̂ (clipped to [0, 1]).
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from t1_deploy._io import atomic_write_text
from t1_deploy._validate import check_int, check_number
from t1_deploy.confounding import epsilon_greedy
from t1_deploy.trec import Qrels, Run, write_qrels, write_run

if TYPE_CHECKING:
    from t1_deploy.package import DeploymentConfig

TOP = 10


def _timed(run: Any, repeats: int) -> tuple[Any, list[float]]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append((time.perf_counter() - start) * 1000.0)
    return result, times


def export_reference(
    out_dir: str | Path,
    config: DeploymentConfig | None = None,
    *,
    epsilon: float = 0.1,
    repeats: int = 3,
) -> dict[str, Any]:
    """Build the reference system, decide and measure the test split, write the files."""
    import scipy.linalg  # noqa: F401  (load every BLAS before limiting their threads)
    import sklearn.linear_model  # noqa: F401
    from threadpoolctl import threadpool_limits

    from t1_deploy.gating import TwoStageGatingOptimizer
    from t1_deploy.package import ProductionDeploymentPackage
    from t1_deploy.router import MonotoneRouterDistiller

    epsilon = check_number("epsilon", epsilon, low=0.001, high=1.0)
    repeats = check_int("repeats", repeats, low=1, high=50)
    out = Path(out_dir)
    package = ProductionDeploymentPackage(config)
    config = package.config
    with threadpool_limits(1):
        dataset = package._require_dataset()
        system = package._ensure_system()
        train = system.run_queries(dataset.splits["train"])
        validation = system.run_queries(dataset.splits["validation"])
        distiller = MonotoneRouterDistiller(config.distillation)
        distiller.fit(
            train.features, (train.gain > 0).astype(float), train.latency_t1_ms, train.gain
        )
        gate = TwoStageGatingOptimizer(config.gating).optimize_gating_parameters(
            validation, distiller.predict(validation.features)
        )
        qrels: Qrels = {}
        runs: dict[str, Run] = {"t0": {}, "t1": {}, "t1_exact": {}}
        latency: list[tuple[str, str, float]] = []
        queries: list[str] = []
        features = []
        for pid in dataset.splits["test"]:
            pair = dataset.pairs[pid]
            qid = f"q{pid}"
            (t0_ids, bm25), t0_times = _timed(lambda q=pair.query: system.t0(q), repeats)

            def end_to_end(q: str = pair.query) -> Any:
                ids, scores = system.t0(q)
                return system.t1(system.embed(q), ids, scores)

            top_t1, t1_times = _timed(end_to_end, repeats)
            exact = system.t1(system.embed(pair.query), t0_ids, bm25, index=system.exact_index)
            qrels[qid] = {f"d{pid}": 1}
            runs["t0"][qid] = [f"d{d}" for d in t0_ids[:TOP].tolist()]
            runs["t1"][qid] = [f"d{d}" for d in top_t1[:TOP].tolist()]
            runs["t1_exact"][qid] = [f"d{d}" for d in exact[:TOP].tolist()]
            latency += [(qid, "t0", t) for t in t0_times] + [(qid, "t1", t) for t in t1_times]
            tag = "hard_nl" if pair.hard_nl else "general"
            queries.append(f"{qid}\t{' '.join(pair.query.split())}\t{tag}")
            features.append(system.context_features(pair.query, t0_ids, bm25))
    scores = distiller.predict(np.asarray(features))
    rng = np.random.default_rng(config.seed + 17)
    upshift, p_upshift = epsilon_greedy(scores, gate.theta_star, epsilon, rng)
    p_logged = np.where(upshift, p_upshift, 1.0 - p_upshift)  # probability of the logged action
    write_qrels(out / "qrels.txt", qrels)
    for name, run in runs.items():
        write_run(out / f"{name}.run", run, f"reference-{name}")
    atomic_write_text(out / "queries.tsv", "\n".join(queries) + "\n")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["qid", "stage", "latency_ms"])
    writer.writerows((q, s, f"{t:.6f}") for q, s, t in latency)
    atomic_write_text(out / "latency.csv", buffer.getvalue())
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["qid", "upshift", "propensity", "confidence"])
    for qid, up, p, s in zip(qrels, upshift, p_logged, scores, strict=True):
        writer.writerow([qid, int(up), f"{p:.6f}", f"{min(max(float(s), 0.0), 1.0):.6f}"])
    atomic_write_text(out / "router.csv", buffer.getvalue())
    return {
        "queries": len(qrels),
        "theta_star": gate.theta_star,
        "epsilon": epsilon,
        "upshifted": int(upshift.sum()),
        "repeats": repeats,
    }
