"""The stdlib data set and the reference search system."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer

from t1_deploy.errors import ConfigError, DatasetError, InvalidInputError
from t1_deploy.package import DeploymentLogs
from t1_deploy.reference.dataset import CodeSearchDataset, build_dataset, nl_confidence, tokenize
from t1_deploy.reference.system import QueryLog, ReferenceSearchSystem, SearchConfig


def test_splits_are_disjoint_and_cover_every_pair(dataset: CodeSearchDataset) -> None:
    seen: set[int] = set()
    for ids in dataset.splits.values():
        assert ids
        assert not seen & set(ids)
        seen |= set(ids)
    assert seen == set(range(len(dataset.pairs)))
    queries = [p.query.lower() for p in dataset.pairs]
    assert len(set(queries)) == len(queries)  # one relevant document per query


def test_dataset_is_deterministic_for_a_seed_and_changes_with_it(
    dataset: CodeSearchDataset,
) -> None:
    again = build_dataset(seed=0, max_pairs=1400)
    assert again.fingerprint == dataset.fingerprint
    assert again.splits == dataset.splits
    other = build_dataset(seed=1, max_pairs=1400)
    assert other.splits["test"] != dataset.splits["test"]


def test_documents_carry_no_docstring_and_hard_nl_is_name_disjoint(
    dataset: CodeSearchDataset,
) -> None:
    for pair in dataset.pairs[:300]:
        assert pair.query not in pair.document
        name_tokens = set(tokenize(pair.qualname.rsplit(".", 1)[-1]))
        assert pair.hard_nl == (not set(tokenize(pair.query)) & name_tokens)


def test_tokenize_and_nl_confidence() -> None:
    assert tokenize("getMandatoryRelease of HTTP_server") == [
        "get",
        "mandatory",
        "release",
        "of",
        "http",
        "server",
    ]
    assert nl_confidence("Return the first element") == 1.0
    assert nl_confidence("call os.path.join(a)") == 0.5
    assert nl_confidence("") == 0.0


def test_bad_dataset_arguments() -> None:
    with pytest.raises(InvalidInputError):
        build_dataset(seed=-1)
    with pytest.raises(InvalidInputError):
        build_dataset(max_pairs=True)
    with pytest.raises(DatasetError):
        build_dataset(fractions=(0.5, 0.5, 0.5, -0.5))


def test_bad_search_config() -> None:
    with pytest.raises(ConfigError):
        SearchConfig(fusion_alpha=1.5)
    with pytest.raises(ConfigError):
        SearchConfig(ef=0)


def test_query_embedding_equals_the_sklearn_pipeline(
    system: ReferenceSearchSystem, dataset: CodeSearchDataset
) -> None:
    docs = [tokenize(p.document) for p in dataset.pairs]
    tfidf = TfidfVectorizer(analyzer=lambda t: t, sublinear_tf=True, min_df=2, dtype=np.float32)
    matrix = tfidf.fit_transform(docs)
    svd = TruncatedSVD(n_components=64, random_state=0, algorithm="randomized").fit(matrix)
    for pair in dataset.pairs[:40]:
        ref = svd.transform(tfidf.transform([tokenize(pair.query)]))[0]
        norm = np.linalg.norm(ref)
        ours = system.embed(pair.query)[0]
        if norm == 0:
            assert not ours.any()
        else:
            np.testing.assert_allclose(ours, ref / norm, atol=2e-4)


def test_query_log_is_measured_and_consistent(logs: DeploymentLogs) -> None:
    log = logs.test
    assert len(log) == len(log.features) == len(log.top_t1)
    assert np.all(log.latency_t0_ms > 0)
    assert np.all(log.latency_t1_ms > 0)
    assert np.all((log.ndcg_t0 >= 0) & (log.ndcg_t0 <= 1))
    # nDCG is recomputable from the logged top-10 ids
    from t1_deploy.stats import ndcg_at_k

    for i in range(20):
        assert log.ndcg_t1[i] == ndcg_at_k(log.top_t1[i].tolist(), int(log.pair_ids[i]))
    joined = QueryLog.concat([log.subset(np.arange(5)), log.subset(np.arange(5, 10))])
    np.testing.assert_array_equal(joined.pair_ids, log.pair_ids[:10])


def test_rankings_are_deterministic(system: ReferenceSearchSystem, logs: DeploymentLogs) -> None:
    again = system.run_queries(logs.test.pair_ids[:30].tolist())
    np.testing.assert_array_equal(again.top_t1, logs.test.top_t1[:30])
    np.testing.assert_array_equal(again.ndcg_t0, logs.test.ndcg_t0[:30])


def test_run_queries_rejects_empty(system: ReferenceSearchSystem) -> None:
    with pytest.raises(InvalidInputError):
        system.run_queries([])
