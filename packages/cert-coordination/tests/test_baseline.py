"""Baselines cached in a real SQLite file: versioned keys, TTL, corruption, other processes."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cert.coordination import BaselineMeasurer, QualityEvaluator
from cert.coordination.demo import ScriptedDemoResponder
from cert.coordination.errors import BaselineError, CacheError, CoordinationInputError
from cert.coordination.testing import text_reply

TASK = "Explain how a circuit breaker protects a service that calls a flaky remote API."


def _measure(make_client, registry, cache: Path, *, calls=1, clock=None, **kw):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        async with make_client(model=kw.pop("model", "claude-sonnet-5")) as client:
            evaluator = QualityEvaluator(client, registry=registry, **kw)
            extra = {} if clock is None else {"clock": clock}
            measurer = BaselineMeasurer(
                client, evaluator, cache_path=cache, registry=registry, **extra
            )
            results = [await measurer.measure(TASK, 3) for _ in range(calls)]
            return measurer, results

    return asyncio.run(go())


def test_second_measurement_is_a_cache_hit(server, make_client, registry, tmp_path) -> None:  # type: ignore[no-untyped-def]
    server.responder = ScriptedDemoResponder(seed=1)
    measurer, (first, second) = _measure(make_client, registry, tmp_path / "b.db", calls=2)
    assert not first.cached
    assert first.api_calls == 6  # 3 answers + 3 judge verdicts
    assert second.cached
    assert second.api_calls == 0
    assert second.scores == first.scores
    assert len(server.requests) == 6
    assert measurer.stats.hits == 1
    assert measurer.stats.saved_fraction == pytest.approx(0.5)
    assert (
        registry.get_sample_value("cert_coordination_baseline_cache_total", {"result": "hit"}) == 1
    )


def test_key_includes_model_and_judge_model(server, make_client, registry, tmp_path) -> None:  # type: ignore[no-untyped-def]
    server.responder = ScriptedDemoResponder(seed=1)
    cache = tmp_path / "b.db"
    _measure(make_client, registry, cache)
    _, (other_model,) = _measure(make_client, registry, cache, model="claude-haiku-4-5")
    _, (other_judge,) = _measure(make_client, registry, cache, judge_model="claude-opus-5")
    _, (other_criteria,) = _measure(make_client, registry, cache, criteria={"correctness": 1.0})
    _, (same,) = _measure(make_client, registry, cache)
    assert not other_model.cached
    assert not other_judge.cached
    assert not other_criteria.cached
    assert same.cached
    with sqlite3.connect(cache) as conn:
        assert conn.execute("SELECT COUNT(*) FROM baselines").fetchone()[0] == 4


def test_entries_expire_after_ttl(server, make_client, registry, tmp_path, manual_clock) -> None:  # type: ignore[no-untyped-def]
    server.responder = ScriptedDemoResponder(seed=1)
    cache = tmp_path / "b.db"
    _measure(make_client, registry, cache, clock=manual_clock)
    manual_clock.advance(7 * 24 * 3600.0)
    measurer, (again,) = _measure(make_client, registry, cache, clock=manual_clock)
    assert not again.cached
    assert measurer.stats.expired == 1


def test_cache_hit_across_processes(server, make_client, registry, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cache = tmp_path / "shared.db"
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from cert.coordination import AnthropicClientWithResilience as Client
        from cert.coordination import BaselineMeasurer, QualityEvaluator
        from cert.coordination.demo import ScriptedDemoResponder
        from cert.coordination.testing import FakeAnthropicServer

        async def go(url):
            async with Client("sk-ant-child", base_url=url) as client:
                evaluator = QualityEvaluator(client)
                measurer = BaselineMeasurer(client, evaluator, cache_path=sys.argv[1])
                result = await measurer.measure({TASK!r}, 3)
                print(result.cached, len(result.scores))

        with FakeAnthropicServer(responder=ScriptedDemoResponder(seed=3)) as fake:
            asyncio.run(go(fake.url))
        """
    )
    child = subprocess.run(
        [sys.executable, "-c", script, str(cache)], capture_output=True, text=True, timeout=60
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.split() == ["False", "3"]
    # This process's fake server has no replies: any request would fail the measurement.
    _, (result,) = _measure(make_client, registry, cache)
    assert result.cached
    assert server.requests == []


def test_corrupted_database_file_is_a_typed_error(make_client, registry, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cache = tmp_path / "b.db"
    cache.write_bytes(b"this is not sqlite" * 100)
    client = make_client()
    with pytest.raises(CacheError, match=r"not a (valid SQLite )?database"):
        BaselineMeasurer(client, QualityEvaluator(client), cache_path=cache)
    assert cache.read_bytes().startswith(b"this is not sqlite")  # nothing overwritten


def test_corrupted_entry_is_remeasured(server, make_client, registry, tmp_path) -> None:  # type: ignore[no-untyped-def]
    server.responder = ScriptedDemoResponder(seed=1)
    cache = tmp_path / "b.db"
    _measure(make_client, registry, cache)
    with sqlite3.connect(cache) as conn:
        conn.execute("UPDATE baselines SET payload = '{\"scores\": [7]}'")
    _, (again,) = _measure(make_client, registry, cache)
    assert not again.cached
    assert all(0 <= s <= 1 for s in again.scores)


def test_all_verdicts_unparseable_is_an_error_and_not_cached(
    server, make_client, registry, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    server.enqueue(text_reply("answer") for _ in range(3))
    server.enqueue(text_reply("no json") for _ in range(3))
    cache = tmp_path / "b.db"
    with pytest.raises(BaselineError, match="failed to parse"):
        _measure(make_client, registry, cache)
    with sqlite3.connect(cache) as conn:
        assert conn.execute("SELECT COUNT(*) FROM baselines").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("task", "num_agents", "fragment"),
    [("", 3, "task"), (TASK, 0, "num_agents"), (TASK, 2.0, "num_agents"), (TASK, 65, "num_agents")],
)
def test_bad_inputs(make_client, registry, tmp_path, task, num_agents, fragment) -> None:  # type: ignore[no-untyped-def]
    client = make_client()
    measurer = BaselineMeasurer(client, QualityEvaluator(client), cache_path=tmp_path / "b.db")
    with pytest.raises(CoordinationInputError, match=fragment):
        asyncio.run(measurer.measure(task, num_agents))
    with pytest.raises(CoordinationInputError, match="ttl_s"):
        BaselineMeasurer(client, QualityEvaluator(client), cache_path=tmp_path / "c.db", ttl_s=-1)
    with pytest.raises(CoordinationInputError, match="evaluator"):
        BaselineMeasurer(client, object(), cache_path=tmp_path / "d.db")  # type: ignore[arg-type]


def test_concurrent_measurements_of_one_key_share_one_backend_run(
    server, make_client, registry, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    server.responder = ScriptedDemoResponder(seed=1)
    server.latency_s = 0.05  # keep the first measurement in flight while the others arrive

    async def go():  # type: ignore[no-untyped-def]
        async with make_client() as client:
            measurer = BaselineMeasurer(
                client, QualityEvaluator(client, registry=registry), cache_path=tmp_path / "b.db"
            )
            results = await asyncio.gather(*(measurer.measure(TASK, 3) for _ in range(5)))
            return measurer, results

    measurer, results = asyncio.run(go())
    assert len(server.requests) == 6  # was 30: five independent runs of 3 answers + 3 verdicts
    assert sum(not r.cached for r in results) == 1
    assert sum(r.api_calls for r in results) == 6
    assert all(r.scores == results[0].scores for r in results)
    assert measurer.stats.coalesced == 4


def test_a_failed_shared_measurement_fails_every_waiter_and_is_not_cached(
    server, make_client, registry, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    server.enqueue(text_reply("answer") for _ in range(3))
    server.enqueue(text_reply("no json") for _ in range(3))

    async def go():  # type: ignore[no-untyped-def]
        async with make_client() as client:
            measurer = BaselineMeasurer(
                client, QualityEvaluator(client, registry=registry), cache_path=tmp_path / "b.db"
            )
            return await asyncio.gather(
                *(measurer.measure(TASK, 3) for _ in range(3)), return_exceptions=True
            )

    outcomes = asyncio.run(go())
    assert all(isinstance(o, BaselineError) for o in outcomes)
    assert len(server.requests) == 6


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_truncated_cache_is_quarantined_and_rebuilt(
    server, make_client, registry, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    server.responder = ScriptedDemoResponder(seed=1)
    cache = tmp_path / "b.db"
    with sqlite3.connect(cache) as conn:  # a real cache with enough pages to truncate
        conn.execute("CREATE TABLE filler (x TEXT)")
        conn.executemany("INSERT INTO filler VALUES (?)", [("x" * 500,)] * 200)
    conn.close()
    _measure(make_client, registry, cache)
    _truncate(cache)
    damaged = cache.read_bytes()
    measurer, (again,) = _measure(make_client, registry, cache)  # was CacheError at construction
    assert not again.cached  # rebuilt: measured anew
    (aside,) = measurer.stats.quarantined
    assert Path(aside).read_bytes() == damaged  # nothing lost: moved aside, not deleted
    assert Path(aside).parent == tmp_path
    _, (third,) = _measure(make_client, registry, cache)
    assert third.cached  # the rebuilt cache works
    assert (
        registry.get_sample_value(
            "cert_coordination_baseline_cache_total", {"result": "quarantined"}
        )
        == 1
    )


def test_a_busy_cache_is_an_error_and_never_quarantined(
    make_client, registry, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from cert.coordination import baseline as baseline_module

    cache = tmp_path / "b.db"
    holder = sqlite3.connect(cache, isolation_level=None)  # a valid database, rollback journal
    holder.execute("CREATE TABLE other (x)")
    holder.execute("BEGIN EXCLUSIVE")  # another writer holds the lock: busy, not damaged
    monkeypatch.setattr(baseline_module, "BUSY_TIMEOUT_S", 0.05)
    client = make_client()
    try:
        with pytest.raises(CacheError, match="unusable"):
            BaselineMeasurer(client, QualityEvaluator(client), cache_path=cache)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert [p.name for p in tmp_path.iterdir() if "corrupt" in p.name] == []
    with sqlite3.connect(cache) as conn:  # still the user's database, in place
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("other",)]
    conn.close()
