"""Latency harvest: a real ef × topk sweep of the HNSW stage, cold and warm, with Pareto front.

Each configuration runs the T1 stage (HNSW search with efSearch=ef, `topk` candidates, fusion) on
the same queries. Cold = the first pass over a freshly deserialised index (median over `repeats`
fresh indexes); warm = the median of `repeats` further passes over an already-used index. ΔnDCG@10
is measured against the current T1 configuration (per query, with a paired BCa LCB). Jaccard is of
the ANN candidate set itself (HNSW's `topk` ids against exact search's `topk` ids, per query,
averaged): after fusion with T0's candidates even efSearch=1 looks like exact search, so the fused
top-10 cannot tell a broken index from a good one.

Admissible = ΔnDCG LCB ≥ −margin and candidate Jaccard ≥ `jaccard_min`. Export rule: among the
admissible points of the Pareto front whose cold and warm p95 move the same way relative to the
current configuration, the fastest warm p95; else the fastest admissible front point; if no point
is admissible, `chosen` is null and the current configuration stays.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from t1_deploy._io import write_json
from t1_deploy._validate import check_int, check_number
from t1_deploy.errors import ConfigError, InvalidInputError, NotFittedError
from t1_deploy.reference.system import ReferenceSearchSystem
from t1_deploy.stats import jaccard_at_k, ndcg_at_k, paired_bca_interval


@dataclass(frozen=True)
class LatencyHarvestConfig:
    ef_values: tuple[int, ...] = (104, 108, 112)
    topk_values: tuple[int, ...] = (80, 88, 96)
    wide_ef_values: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 256)
    wide_topk_values: tuple[int, ...] = (10, 20, 40, 160)
    include_wide_grid: bool = True
    repeats: int = 3
    n_queries: int = 400
    jaccard_min: float = 0.80
    noninferiority_margin: float = 0.0
    confidence: float = 0.95
    n_resamples: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("ef_values", "topk_values", "wide_ef_values", "wide_topk_values"):
            values = getattr(self, name)
            if not values:
                raise ConfigError(f"LatencyHarvestConfig.{name} must not be empty")
            for v in values:
                check_int(f"LatencyHarvestConfig.{name}[]", v, low=1, high=100_000)
        check_int("LatencyHarvestConfig.repeats", self.repeats, low=1, high=100)
        check_int("LatencyHarvestConfig.n_queries", self.n_queries, low=10, high=10**6)
        check_number("LatencyHarvestConfig.jaccard_min", self.jaccard_min, low=0, high=1)
        check_number(
            "LatencyHarvestConfig.noninferiority_margin", self.noninferiority_margin, low=0, high=1
        )


@dataclass
class HarvestPoint:
    ef: int
    topk: int
    p95_cold_ms: float
    p95_warm_ms: float
    p50_warm_ms: float
    ndcg: float
    delta_ndcg: float
    delta_ndcg_lcb: float
    jaccard: float
    cold_warm_sign_match: bool
    admissible: bool


@dataclass
class HarvestResult:
    points: list[HarvestPoint]
    pareto_front: list[int]
    chosen: int | None
    reference: dict[str, int]
    n_queries: int
    details: dict[str, Any] = field(default_factory=dict)


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """a dominates b when it is no worse on every objective and better on one (all minimised)."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(
        x < y for x, y in zip(a, b, strict=True)
    )


def pareto_front(objectives: Sequence[Sequence[float]]) -> list[int]:
    """Indices of non-dominated points (all objectives minimised), by a sort-and-filter sweep."""
    order = sorted(range(len(objectives)), key=lambda i: tuple(objectives[i]))
    front: list[int] = []
    for i in order:
        if not any(dominates(objectives[j], objectives[i]) for j in front):
            front = [j for j in front if not dominates(objectives[i], objectives[j])]
            front.append(i)
    return sorted(front)


class LatencyHarvestOptimizer:
    def __init__(self, config: LatencyHarvestConfig | None = None) -> None:
        self.config = config or LatencyHarvestConfig()
        self.result: HarvestResult | None = None

    def grid(self) -> list[tuple[int, int]]:
        cfg = self.config
        pairs = {(e, k) for e in cfg.ef_values for k in cfg.topk_values}
        if cfg.include_wide_grid:
            efs = sorted(set(cfg.ef_values) | set(cfg.wide_ef_values))
            topks = sorted(set(cfg.topk_values) | set(cfg.wide_topk_values))
            pairs |= {(e, k) for e in efs for k in (cfg.topk_values[len(cfg.topk_values) // 2],)}
            pairs |= {(e, k) for e in (cfg.ef_values[len(cfg.ef_values) // 2],) for k in topks}
        return sorted(pairs)

    def _pass(
        self, system: ReferenceSearchSystem, index: Any, prepared: list[Any], ef: int, topk: int
    ) -> tuple[list[list[int]], npt.NDArray[np.float64]]:
        rankings, times = [], []
        for qvec, t0_ids, scores in prepared:
            start = time.perf_counter()
            top = system.t1(qvec, t0_ids, scores, index=index, ef=ef, topk=topk)
            times.append((time.perf_counter() - start) * 1000.0)
            rankings.append(top.tolist())
        return rankings, np.asarray(times)

    def optimize_latency_harvest(
        self, system: ReferenceSearchSystem, pair_ids: Sequence[int]
    ) -> HarvestResult:
        if not isinstance(system, ReferenceSearchSystem):
            raise InvalidInputError("system must be a ReferenceSearchSystem")
        if len(pair_ids) < 10:
            raise InvalidInputError(f"pair_ids needs at least 10 queries, got {len(pair_ids)}")
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        ids = sorted(
            rng.choice(
                np.asarray(pair_ids), size=min(cfg.n_queries, len(pair_ids)), replace=False
            ).tolist()
        )
        if max(max(cfg.topk_values), max(cfg.wide_topk_values)) > system.n_docs:
            raise ConfigError(
                f"LatencyHarvestConfig topk values must not exceed {system.n_docs} documents"
            )
        prepared = []
        for pid in ids:
            query = system.dataset.pairs[pid].query
            t0_ids, scores = system.t0(query)
            prepared.append((system.embed(query), t0_ids, scores))
        ref_cfg = {"ef": system.config.ef, "topk": system.config.topk}
        ref_rank, _ = self._pass(
            system, system.fresh_hnsw(), prepared, ref_cfg["ef"], ref_cfg["topk"]
        )
        ref_ndcg = np.array([ndcg_at_k(r, pid) for r, pid in zip(ref_rank, ids, strict=True)])
        ref_cold, ref_warm = None, None
        raw = []
        for ef, topk in self.grid():
            cold_runs = []
            for _ in range(cfg.repeats):  # each cold run gets its own freshly loaded index
                index = system.fresh_hnsw()
                rank, first = self._pass(system, index, prepared, ef, topk)
                cold_runs.append(first)
            cold = np.median(np.stack(cold_runs), axis=0)
            warm_runs = [
                self._pass(system, index, prepared, ef, topk)[1] for _ in range(cfg.repeats)
            ]
            warm = np.median(np.stack(warm_runs), axis=0)
            candidates = [
                (
                    system.ann_candidates(q, index=index, ef=ef, topk=topk).tolist(),
                    system.ann_candidates(q, index=system.exact_index, topk=topk).tolist(),
                )
                for q, _, _ in prepared
            ]
            ndcg = np.array([ndcg_at_k(r, pid) for r, pid in zip(rank, ids, strict=True)])
            ci = paired_bca_interval(
                ndcg - ref_ndcg,
                confidence=cfg.confidence,
                n_resamples=cfg.n_resamples,
                seed=cfg.seed,
            )
            jac = float(np.mean([jaccard_at_k(a, e, k=topk) for a, e in candidates]))
            p95c, p95w = float(np.percentile(cold, 95)), float(np.percentile(warm, 95))
            if (ef, topk) == (ref_cfg["ef"], ref_cfg["topk"]):
                ref_cold, ref_warm = p95c, p95w
            raw.append((ef, topk, p95c, p95w, float(np.median(warm)), float(ndcg.mean()), ci, jac))
        if ref_cold is None or ref_warm is None:
            ref_cold = float(np.median([r[2] for r in raw]))
            ref_warm = float(np.median([r[3] for r in raw]))
        points = []
        for ef, topk, p95c, p95w, p50w, mean_ndcg, ci, jac in raw:
            sign_match = np.sign(round(p95c - ref_cold, 6)) == np.sign(round(p95w - ref_warm, 6))
            points.append(
                HarvestPoint(
                    ef=ef,
                    topk=topk,
                    p95_cold_ms=p95c,
                    p95_warm_ms=p95w,
                    p50_warm_ms=p50w,
                    ndcg=mean_ndcg,
                    delta_ndcg=ci.mean,
                    delta_ndcg_lcb=ci.low,
                    jaccard=jac,
                    cold_warm_sign_match=bool(sign_match),
                    admissible=bool(
                        ci.low >= -cfg.noninferiority_margin and jac >= cfg.jaccard_min
                    ),
                )
            )
        front = pareto_front([(p.p95_warm_ms, -p.delta_ndcg, -p.jaccard) for p in points])
        admissible = [i for i in front if points[i].admissible and points[i].cold_warm_sign_match]
        if not admissible:
            admissible = [i for i in front if points[i].admissible]
        chosen = min(admissible, key=lambda i: points[i].p95_warm_ms) if admissible else None
        self.result = HarvestResult(
            points,
            front,
            chosen,
            ref_cfg,
            len(ids),
            {"reference_p95_cold_ms": ref_cold, "reference_p95_warm_ms": ref_warm},
        )
        return self.result

    def export_latency_harvest_config(
        self, path: str | Path, pareto_png: str | Path | None = None
    ) -> Path:
        if self.result is None:
            raise NotFittedError("optimize_latency_harvest must run first")
        r = self.result
        chosen = asdict(r.points[r.chosen]) if r.chosen is not None else None
        payload = {
            "schema_version": "1.0",
            "kind": "latency_harvest_config",
            "chosen": chosen,
            "reference": r.reference,
            "n_queries": r.n_queries,
            "pareto_front": r.pareto_front,
            "points": [asdict(p) for p in r.points],
            "definitions": {
                "delta_ndcg": "mean per-query nDCG@10 minus the current T1 configuration",
                "jaccard": "mean over queries of the Jaccard of HNSW's topk candidate ids vs exact "
                "search's topk ids (before fusion)",
                "export_rule": "fastest warm p95 among admissible Pareto points whose cold and "
                "warm p95 move the same way vs the current configuration; else fastest admissible "
                "Pareto point; none admissible: chosen = null, the current configuration stays",
                "cold": "first pass over a freshly deserialised index, "
                f"median of {self.config.repeats}",
                "warm": f"median of {self.config.repeats} further passes",
            },
            **r.details,
        }
        if pareto_png is not None:
            from t1_deploy._plots import pareto_png as draw

            draw(Path(pareto_png), [asdict(p) for p in r.points], r.pareto_front)
        return write_json(Path(path), payload)
