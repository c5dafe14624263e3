"""A small, real code-search system to govern: stdlib data, BM25 (T0), embeddings + HNSW (T1)."""

from t1_deploy.reference.dataset import CodeSearchDataset, CodeSearchPair, build_dataset
from t1_deploy.reference.system import QueryLog, ReferenceSearchSystem, SearchConfig

__all__ = [
    "CodeSearchDataset",
    "CodeSearchPair",
    "QueryLog",
    "ReferenceSearchSystem",
    "SearchConfig",
    "build_dataset",
]
