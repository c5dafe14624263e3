"""The reference search system: T0 = BM25 (bm25s), T1 = TF-IDF+SVD embeddings in a faiss HNSW
index fused with T0, and a cheap "lite" T1 that only re-ranks T0's candidates by embedding.

Every query is run through every stage and the wall time of each stage is measured with
`time.perf_counter` (median of `latency_repeats` runs, in milliseconds), so the router, the gate
and the contract all work from what this machine actually did.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from t1_deploy._validate import check_int, check_number
from t1_deploy.errors import ConfigError, InvalidInputError
from t1_deploy.reference.dataset import CodeSearchDataset, nl_confidence, tokenize
from t1_deploy.stats import jaccard_at_k, ndcg_at_k

FEATURES = ("entropy", "query_length", "nl_confidence", "miss_rate")
TOP = 10


@dataclass(frozen=True)
class SearchConfig:
    """Parameters of the reference system (embedded defaults; every field is validated)."""

    bm25_k1: float = 1.2
    bm25_b: float = 0.75
    t0_depth: int = 20
    svd_dim: int = 256
    hnsw_m: int = 16
    ef_construction: int = 64
    ef: int = 108
    topk: int = 88
    fusion_alpha: float = 0.7
    latency_repeats: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        check_number("SearchConfig.bm25_k1", self.bm25_k1, low=0.0, high=10.0)
        check_number("SearchConfig.bm25_b", self.bm25_b, low=0.0, high=1.0)
        check_number("SearchConfig.fusion_alpha", self.fusion_alpha, low=0.0, high=1.0)
        for name, low, high in (
            ("t0_depth", 10, 5000),
            ("svd_dim", 2, 1024),
            ("hnsw_m", 2, 128),
            ("ef_construction", 4, 4096),
            ("ef", 1, 4096),
            ("topk", 10, 5000),
            ("latency_repeats", 1, 50),
            ("seed", 0, 2**32 - 1),
        ):
            check_int(f"SearchConfig.{name}", getattr(self, name), low=low, high=high)


@dataclass
class QueryLog:
    """Column store of per-query measurements (one row per query, aligned arrays)."""

    pair_ids: npt.NDArray[np.int64]
    features: npt.NDArray[np.float64]  # columns = FEATURES
    ndcg_t0: npt.NDArray[np.float64]
    ndcg_t1: npt.NDArray[np.float64]
    ndcg_lite: npt.NDArray[np.float64]
    latency_t0_ms: npt.NDArray[np.float64]
    latency_t1_ms: npt.NDArray[np.float64]
    latency_lite_ms: npt.NDArray[np.float64]
    jaccard_t1_exact: npt.NDArray[np.float64]  # per query: T1 (HNSW) vs T1 (exact search)
    hard_nl: npt.NDArray[np.bool_]
    domain: npt.NDArray[np.str_]
    top_t0: npt.NDArray[np.int64]  # (n, 10) document ids
    top_t1: npt.NDArray[np.int64]
    top_lite: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.pair_ids)

    @property
    def gain(self) -> npt.NDArray[np.float64]:
        """Per-query nDCG@10 gain of upshifting to T1 over staying on T0."""
        return self.ndcg_t1 - self.ndcg_t0

    def subset(self, rows: npt.ArrayLike) -> QueryLog:
        idx = np.asarray(rows)
        columns: dict[str, Any] = {f.name: getattr(self, f.name)[idx] for f in fields(self)}
        return QueryLog(**columns)

    @staticmethod
    def concat(logs: Sequence[QueryLog]) -> QueryLog:
        if not logs:
            raise InvalidInputError("logs must hold at least one QueryLog")
        columns: dict[str, Any] = {
            f.name: np.concatenate([getattr(log, f.name) for log in logs]) for f in fields(QueryLog)
        }
        return QueryLog(**columns)


def _median_ms(run: Callable[[], Any], repeats: int) -> tuple[Any, float]:
    times = []
    result: Any = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append((time.perf_counter() - start) * 1000.0)
    return result, float(np.median(times))


def _top_ids(scores: npt.NDArray[np.float64], k: int) -> npt.NDArray[np.int64]:
    k = min(k, len(scores))
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.lexsort((part, -scores[part]))].astype(np.int64)


class ReferenceSearchSystem:
    """Index the data set's documents once; run queries through T0, T1 and T1-lite."""

    def __init__(self, dataset: CodeSearchDataset, config: SearchConfig | None = None) -> None:
        self.dataset = dataset
        self.config = config or SearchConfig()
        if self.config.t0_depth > len(dataset.pairs) or self.config.topk > len(dataset.pairs):
            raise ConfigError(
                f"SearchConfig.t0_depth/topk must not exceed the corpus size {len(dataset.pairs)}"
            )
        self._build()

    # ------------------------------------------------------------------ indexing
    def _build(self) -> None:
        import scipy.linalg  # noqa: F401  (load every BLAS before limiting their threads)
        import sklearn.decomposition  # noqa: F401
        from threadpoolctl import threadpool_limits

        # One BLAS thread: on a shared 2-core machine threaded LAPACK in the SVD is ~20x slower,
        # and a fixed thread count keeps the floating-point sums (and so the index) reproducible.
        with threadpool_limits(1):
            self._build_indexes()

    def _build_indexes(self) -> None:
        import bm25s
        import faiss
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        faiss.omp_set_num_threads(1)  # single-threaded build: deterministic graph
        cfg = self.config
        docs = [tokenize(p.document) for p in self.dataset.pairs]
        self.vocabulary = {t for d in docs for t in d}
        self.n_docs = len(docs)
        self._bm25 = bm25s.BM25(k1=cfg.bm25_k1, b=cfg.bm25_b)
        self._bm25.index(docs, show_progress=False)
        tfidf = TfidfVectorizer(analyzer=_identity, sublinear_tf=True, min_df=2, dtype=np.float32)
        matrix = tfidf.fit_transform(docs)
        dim = min(cfg.svd_dim, matrix.shape[1] - 1, matrix.shape[0] - 1)
        svd = TruncatedSVD(n_components=dim, random_state=cfg.seed, algorithm="randomized")
        self.doc_embeddings = _normalise(svd.fit_transform(matrix).astype(np.float32))
        # The query side is evaluated by hand (same maths as TfidfVectorizer + SVD.transform):
        # sklearn's per-call overhead would otherwise dominate the stage's latency.
        self._term_index = {t: i for i, t in enumerate(tfidf.get_feature_names_out())}
        self._idf = tfidf.idf_.astype(np.float32)
        self._projection = svd.components_.T.astype(np.float32).copy()
        self._hnsw = faiss.IndexHNSWFlat(dim, cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        self._hnsw.hnsw.efConstruction = cfg.ef_construction
        self._hnsw.add(self.doc_embeddings)
        self._exact = faiss.IndexFlatIP(dim)
        self._exact.add(self.doc_embeddings)
        self._hnsw_bytes = faiss.serialize_index(self._hnsw)

    def fresh_hnsw(self) -> Any:
        """A newly deserialised copy of the HNSW index: its memory is cold for the next search."""
        import faiss

        return faiss.deserialize_index(self._hnsw_bytes)

    # ------------------------------------------------------------------ stages
    def embed(self, query: str) -> npt.NDArray[np.float32]:
        """Sublinear TF × IDF, L2-normalised, projected by the SVD, L2-normalised again."""
        counts: dict[int, int] = {}
        for token in tokenize(query):
            col = self._term_index.get(token)
            if col is not None:
                counts[col] = counts.get(col, 0) + 1
        if not counts:
            return np.zeros((1, self._projection.shape[1]), dtype=np.float32)
        cols = np.fromiter(counts, dtype=np.int64, count=len(counts))
        weights = (1.0 + np.log(np.fromiter(counts.values(), dtype=np.float32))) * self._idf[cols]
        weights /= np.linalg.norm(weights)
        return _normalise((weights @ self._projection[cols])[None, :])

    def t0(self, query: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """BM25 top `t0_depth` ids, and the BM25 score of every document."""
        tokens = [t for t in tokenize(query) if t in self.vocabulary]
        if not tokens:
            return np.arange(self.config.t0_depth, dtype=np.int64), np.zeros(self.n_docs)
        scores = np.asarray(self._bm25.get_scores(tokens), dtype=np.float64)
        return _top_ids(scores, self.config.t0_depth), scores

    def fuse(
        self,
        query_vec: npt.NDArray[np.float32],
        t0_ids: npt.NDArray[np.int64],
        bm25_scores: npt.NDArray[np.float64],
        ann_ids: npt.NDArray[np.int64],
    ) -> npt.NDArray[np.int64]:
        """α·BM25/max + (1−α)·cosine over the union of candidates; ties broken by id."""
        candidates = np.unique(np.concatenate([t0_ids, ann_ids[ann_ids >= 0]]))
        top = float(bm25_scores.max())
        lexical = bm25_scores[candidates] / top if top > 0 else np.zeros(len(candidates))
        cosine = self.doc_embeddings[candidates] @ query_vec[0]
        fused = self.config.fusion_alpha * lexical + (1 - self.config.fusion_alpha) * cosine
        order = np.lexsort((candidates, -fused))[:TOP]
        return candidates[order]

    def t1(
        self,
        query_vec: npt.NDArray[np.float32],
        t0_ids: npt.NDArray[np.int64],
        bm25_scores: npt.NDArray[np.float64],
        *,
        index: Any = None,
        ef: int | None = None,
        topk: int | None = None,
    ) -> npt.NDArray[np.int64]:
        """ANN search (efSearch=ef, topk candidates) fused with T0's candidates."""
        ann = self.ann_candidates(query_vec, index=index, ef=ef, topk=topk)
        return self.fuse(query_vec, t0_ids, bm25_scores, ann)

    def ann_candidates(
        self,
        query_vec: npt.NDArray[np.float32],
        *,
        index: Any = None,
        ef: int | None = None,
        topk: int | None = None,
    ) -> npt.NDArray[np.int64]:
        """The `topk` nearest documents by embedding (HNSW with efSearch=ef, or exact)."""
        import faiss

        index = self._hnsw if index is None else index
        k = topk or self.config.topk
        if isinstance(index, faiss.IndexHNSW):
            params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
            params.efSearch = ef or self.config.ef
            _, ann = index.search(query_vec, k, params=params)
        else:
            _, ann = index.search(query_vec, k)
        return np.asarray(ann[0], dtype=np.int64)

    @property
    def exact_index(self) -> Any:
        return self._exact

    def context_features(
        self, query: str, t0_ids: npt.NDArray[np.int64], bm25_scores: npt.NDArray[np.float64]
    ) -> list[float]:
        """Router context: T0 top-10 score entropy, query length, NL confidence, miss rate."""
        tokens = tokenize(query)
        top = np.clip(bm25_scores[t0_ids[:TOP]], 0.0, None)
        total = float(top.sum())
        if total <= 0:
            entropy = 1.0
        else:
            p = top[top > 0] / total
            entropy = float(-(p * np.log(p)).sum() / math.log(TOP))
        miss = sum(1 for t in tokens if t not in self.vocabulary) / max(len(tokens), 1)
        return [entropy, float(len(tokens)), nl_confidence(query), miss]

    # ------------------------------------------------------------------ logging
    def run_queries(
        self,
        pair_ids: Sequence[int],
        *,
        progress: Callable[[int], None] | None = None,
    ) -> QueryLog:
        """Run every stage on each query (its own pair's docstring line) and log the results."""
        if len(pair_ids) == 0:
            raise InvalidInputError("pair_ids must not be empty")
        reps = self.config.latency_repeats
        rows: dict[str, list[Any]] = {k: [] for k in _LOG_COLUMNS}
        for count, pid in enumerate(pair_ids, start=1):
            pair = self.dataset.pairs[int(pid)]
            (t0_ids, bm25_scores), lat_t0 = _median_ms(partial(self.t0, pair.query), reps)

            def run_t1(q: str = pair.query, a: Any = t0_ids, s: Any = bm25_scores) -> Any:
                return self.t1(self.embed(q), a, s)

            def run_lite(q: str = pair.query, a: Any = t0_ids, s: Any = bm25_scores) -> Any:
                return self.fuse(self.embed(q), a, s, np.empty(0, dtype=np.int64))

            top_t1, lat_t1 = _median_ms(run_t1, reps)
            top_lite, lat_lite = _median_ms(run_lite, reps)
            qvec = self.embed(pair.query)
            top_exact = self.t1(qvec, t0_ids, bm25_scores, index=self._exact)
            rows["pair_ids"].append(pair.pair_id)
            rows["features"].append(self.context_features(pair.query, t0_ids, bm25_scores))
            rows["ndcg_t0"].append(ndcg_at_k(t0_ids.tolist(), pair.pair_id))
            rows["ndcg_t1"].append(ndcg_at_k(top_t1.tolist(), pair.pair_id))
            rows["ndcg_lite"].append(ndcg_at_k(top_lite.tolist(), pair.pair_id))
            rows["latency_t0_ms"].append(lat_t0)
            rows["latency_t1_ms"].append(lat_t1)
            rows["latency_lite_ms"].append(lat_lite)
            rows["jaccard_t1_exact"].append(jaccard_at_k(top_t1.tolist(), top_exact.tolist()))
            rows["hard_nl"].append(pair.hard_nl)
            rows["domain"].append(pair.domain)
            rows["top_t0"].append(_pad(t0_ids[:TOP]))
            rows["top_t1"].append(_pad(top_t1))
            rows["top_lite"].append(_pad(top_lite))
            if progress is not None:
                progress(count)
        return QueryLog(
            pair_ids=np.asarray(rows["pair_ids"], dtype=np.int64),
            features=np.asarray(rows["features"], dtype=np.float64),
            ndcg_t0=np.asarray(rows["ndcg_t0"]),
            ndcg_t1=np.asarray(rows["ndcg_t1"]),
            ndcg_lite=np.asarray(rows["ndcg_lite"]),
            latency_t0_ms=np.asarray(rows["latency_t0_ms"]),
            latency_t1_ms=np.asarray(rows["latency_t1_ms"]),
            latency_lite_ms=np.asarray(rows["latency_lite_ms"]),
            jaccard_t1_exact=np.asarray(rows["jaccard_t1_exact"]),
            hard_nl=np.asarray(rows["hard_nl"], dtype=bool),
            domain=np.asarray(rows["domain"], dtype=str),
            top_t0=np.asarray(rows["top_t0"], dtype=np.int64),
            top_t1=np.asarray(rows["top_t1"], dtype=np.int64),
            top_lite=np.asarray(rows["top_lite"], dtype=np.int64),
        )


_LOG_COLUMNS = [f.name for f in fields(QueryLog)]


def _identity(tokens: list[str]) -> list[str]:
    return tokens


def _pad(ids: npt.NDArray[np.int64]) -> list[int]:
    out = ids.tolist()[:TOP]
    return out + [-1] * (TOP - len(out))


def _normalise(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (x / norms).astype(np.float32)
