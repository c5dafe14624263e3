"""Independent single-agent baselines, cached in SQLite.

A baseline for (task, num_agents) is ``num_agents`` independent answers from one agent prompt,
each scored by the judge. It does not depend on the coordination strategy, so it is measured once
and cached under a versioned key:

    sha256(json({key_version, task, num_agents, model, judge_model, criteria_hash, prompt_version}))

Writes are SQLite transactions taken under a file lock (``<db>.lock``), so concurrent processes
never interleave partial entries; entries expire after ``ttl_s``. The payload is JSON, never pickle.

Concurrent ``measure()`` calls for one key in one process share a single measurement
(single-flight): the first runs it, the others wait for its result instead of paying for the
same baseline again. A damaged SQLite cache (a truncated or malformed file that still carries
the SQLite header) is quarantined, renamed aside as ``<db>.corrupt-<time>`` with its WAL files,
and rebuilt empty: it is only a cache, and nothing is deleted. A file that is not SQLite at all
is someone else's and is refused with :class:`CacheError`, untouched.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from filelock import FileLock
from prometheus_client import CollectorRegistry

from cert.coordination import prompts
from cert.coordination._validate import check_float, check_int, check_text
from cert.coordination.backend import ChatBackend, ChatMessage
from cert.coordination.errors import BaselineError, CacheError, CoordinationInputError
from cert.coordination.evaluator import BASELINE_ROLE, QualityEvaluator, sum_costs
from cert.coordination.telemetry import CoordinationTelemetry
from cert.runtime.logging import get_logger

CACHE_KEY_VERSION = 1
BUSY_TIMEOUT_S = 30.0
"""How long a connection waits for another writer's lock before the cache reports it busy."""
DEFAULT_TTL_S = 7 * 24 * 3600.0
_log = get_logger("cert.coordination.baseline")
_SQLITE_MAGIC = b"SQLite format 3\x00"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS baselines (
    key TEXT PRIMARY KEY,
    key_fields TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
)
"""


def default_cache_path() -> Path:
    """``$CERT_COORDINATION_CACHE_DIR/baselines.sqlite3`` or ``~/.cache/cert-coordination/...``."""
    root = os.environ.get("CERT_COORDINATION_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "cert-coordination"
    return base / "baselines.sqlite3"


@dataclass(frozen=True)
class BaselineResult:
    """Scores of the independent answers (judge failures excluded and counted)."""

    scores: list[float]
    answers: list[str]
    cached: bool
    api_calls: int
    judge_failures: int
    key: str
    cost_usd: Decimal | None = Decimal(0)

    @property
    def mean(self) -> float:
        return sum(self.scores) / len(self.scores)

    @property
    def best(self) -> float:
        return max(self.scores)


@dataclass
class CacheStats:
    lookups: int = 0
    hits: int = 0
    misses: int = 0
    expired: int = 0
    api_calls_made: int = 0
    api_calls_saved: int = 0
    coalesced: int = 0
    quarantined: list[str] = field(default_factory=list)

    @property
    def saved_fraction(self) -> float:
        """Fraction of the API calls a no-cache run would have made that the cache avoided."""
        total = self.api_calls_made + self.api_calls_saved
        return self.api_calls_saved / total if total else 0.0


class BaselineMeasurer:
    """Measures and caches single-agent baselines for coordination metrics."""

    def __init__(
        self,
        backend: ChatBackend,
        evaluator: QualityEvaluator,
        *,
        cache_path: str | Path | None = None,
        ttl_s: float = DEFAULT_TTL_S,
        max_tokens: int = 1024,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(backend, ChatBackend):
            raise CoordinationInputError(
                f"backend must implement ChatBackend, got {type(backend).__name__}"
            )
        if not isinstance(evaluator, QualityEvaluator):
            raise CoordinationInputError(
                f"evaluator must be a QualityEvaluator, got {type(evaluator).__name__}"
            )
        self.backend = backend
        self.evaluator = evaluator
        self.path = Path(cache_path) if cache_path is not None else default_cache_path()
        self.ttl_s = check_float("ttl_s", ttl_s, minimum=0.0, allow_minimum=False)
        self.max_tokens = check_int("max_tokens", max_tokens, minimum=1, maximum=128_000)
        self.telemetry = CoordinationTelemetry(registry)
        self.stats = CacheStats()
        self._clock = clock
        self._lock = FileLock(str(self.path) + ".lock")
        self._in_flight: dict[tuple[int, str], asyncio.Task[BaselineResult]] = {}
        self._init_db()

    # ------------------------------------------------------------------ storage
    def _connect(self) -> sqlite3.Connection:
        """A WAL-mode connection; sqlite3 errors propagate so callers can tell damage
        (``DatabaseError``) from a busy or unopenable file (``OperationalError``)."""
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        except BaseException:
            conn.close()
            raise
        return conn

    def _init_db(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            try:
                with closing(self._connect()) as conn, conn:
                    conn.execute(_SCHEMA)
                    (verdict,) = conn.execute("PRAGMA quick_check").fetchone()
                if verdict != "ok":
                    raise sqlite3.DatabaseError(f"quick_check: {verdict}")
            except sqlite3.OperationalError as exc:  # locked, unopenable: not damage
                raise CacheError(f"baseline cache {str(self.path)!r} is unusable: {exc}") from exc
            except sqlite3.DatabaseError as exc:
                self._quarantine_or_refuse(exc)
                try:
                    with closing(self._connect()) as conn, conn:
                        conn.execute(_SCHEMA)
                except sqlite3.DatabaseError as again:
                    raise CacheError(
                        f"cannot rebuild baseline cache {str(self.path)!r}: {again}"
                    ) from again

    def _quarantine_or_refuse(self, exc: BaseException) -> None:
        """Rename a damaged SQLite cache aside (call under the file lock); refuse a foreign file."""
        try:
            with self.path.open("rb") as handle:
                header = handle.read(len(_SQLITE_MAGIC))
        except OSError as read_error:
            raise CacheError(
                f"baseline cache {str(self.path)!r} is unreadable: {read_error}"
            ) from exc
        if header != _SQLITE_MAGIC:
            raise CacheError(
                f"baseline cache {str(self.path)!r} is not a valid SQLite database "
                f"(left untouched): {exc}"
            ) from exc
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{os.getpid()}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(str(self.path) + suffix)
            if source.exists():
                os.replace(source, Path(str(aside) + suffix))
        self.stats.quarantined.append(str(aside))
        self.telemetry.baseline_cache.labels("quarantined").inc()
        _log.warning(
            "damaged baseline cache quarantined and rebuilt",
            extra={"path": str(self.path), "moved_to": str(aside), "error": str(exc)},
        )

    def key_fields(self, task: str, num_agents: int, model: str | None) -> dict[str, Any]:
        return {
            "key_version": CACHE_KEY_VERSION,
            "task": task,
            "num_agents": num_agents,
            "model": model or self.backend.default_model,
            "judge_model": self.evaluator.judge_model,
            "criteria_hash": self.evaluator.criteria_hash,
            "prompt_version": prompts.PROMPT_VERSION,
            "max_tokens": self.max_tokens,
        }

    @staticmethod
    def cache_key(fields: dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode("utf-8")).hexdigest()

    def _load(self, key: str) -> dict[str, Any] | None:
        try:
            with closing(self._connect()) as conn:
                row = conn.execute(
                    "SELECT payload, expires_at FROM baselines WHERE key = ?", (key,)
                ).fetchone()
        except sqlite3.OperationalError as exc:
            raise CacheError(f"baseline cache {str(self.path)!r} is unreadable: {exc}") from exc
        except sqlite3.DatabaseError:  # damaged since construction: quarantine, measure anew
            self._init_db()
            return None
        if row is None:
            return None
        payload, expires_at = row
        if expires_at <= self._clock():
            self.stats.expired += 1
            self.telemetry.baseline_cache.labels("expired").inc()
            return None
        try:
            data = json.loads(payload)
            scores = [float(s) for s in data["scores"]]
            answers = [str(a) for a in data["answers"]]
            if not scores or not all(0.0 <= s <= 1.0 for s in scores):
                raise ValueError("scores out of range")
        except (ValueError, KeyError, TypeError):
            _log.warning("corrupted baseline cache entry ignored", extra={"key": key[:16]})
            self.telemetry.baseline_cache.labels("corrupt").inc()
            return None
        return {
            "scores": scores,
            "answers": answers,
            "judge_failures": data.get("judge_failures", 0),
        }

    def _store(self, key: str, fields: dict[str, Any], payload: dict[str, Any]) -> None:
        now = self._clock()
        with self._lock:
            try:
                with closing(self._connect()) as conn, conn:
                    conn.execute(
                        "INSERT OR REPLACE INTO baselines VALUES (?, ?, ?, ?, ?)",
                        (
                            key,
                            json.dumps(fields, sort_keys=True),
                            json.dumps(payload),
                            now,
                            now + self.ttl_s,
                        ),
                    )
            except sqlite3.DatabaseError as exc:
                raise CacheError(f"cannot write baseline cache {str(self.path)!r}: {exc}") from exc

    def purge_expired(self) -> int:
        """Delete expired entries; returns how many were removed."""
        try:
            with self._lock, closing(self._connect()) as conn, conn:
                cursor = conn.execute(
                    "DELETE FROM baselines WHERE expires_at <= ?", (self._clock(),)
                )
                return cursor.rowcount
        except sqlite3.DatabaseError as exc:
            raise CacheError(f"cannot purge baseline cache {str(self.path)!r}: {exc}") from exc

    # ------------------------------------------------------------------ measuring
    def calls_per_baseline(self, num_agents: int) -> int:
        """API calls a cache miss costs: one answer and its judge call(s) per agent."""
        return num_agents * (1 + self.evaluator.calls_per_answer)

    async def _one(
        self, task: str, index: int, model: str | None
    ) -> tuple[str, float | None, Decimal | None]:
        reply = await self.backend.complete(
            [ChatMessage("user", prompts.solo(task))],
            system=prompts.AGENT_SYSTEM.format(index=1),
            max_tokens=self.max_tokens,
            model=model,
            agent=f"baseline-{index + 1}",
        )
        outcome = await self.evaluator.evaluate_detailed(
            task, reply.text, agent="judge-baseline", role=BASELINE_ROLE
        )
        answer_cost = reply.extra.get("cost_usd") if reply.extra else None
        score = None if outcome.score is None else outcome.score.overall
        return reply.text, score, sum_costs([answer_cost, outcome.cost_usd])

    async def measure(
        self, task: str, num_agents: int, *, model: str | None = None
    ) -> BaselineResult:
        """The cached baseline for (task, num_agents, model...), measured on a miss."""
        check_text("task", task)
        check_int("num_agents", num_agents, minimum=1, maximum=64)
        fields = self.key_fields(task, num_agents, model)
        key = self.cache_key(fields)
        self.stats.lookups += 1
        cached = self._load(key)
        if cached is not None:
            self.stats.hits += 1
            self.stats.api_calls_saved += self.calls_per_baseline(num_agents)
            self.telemetry.baseline_cache.labels("hit").inc()
            return BaselineResult(
                cached["scores"], cached["answers"], True, 0, cached["judge_failures"], key
            )
        slot = (id(asyncio.get_running_loop()), key)
        running = self._in_flight.get(slot)
        if running is not None:  # single-flight: share the measurement already under way
            self.stats.coalesced += 1
            self.stats.api_calls_saved += self.calls_per_baseline(num_agents)
            self.telemetry.baseline_cache.labels("coalesced").inc()
            shared = await asyncio.shield(running)
            return replace(shared, cached=True, api_calls=0, cost_usd=Decimal(0))
        self.stats.misses += 1
        self.telemetry.baseline_cache.labels("miss").inc()
        measuring = asyncio.ensure_future(self._measure_miss(task, num_agents, model, fields, key))
        self._in_flight[slot] = measuring
        measuring.add_done_callback(lambda _: self._in_flight.pop(slot, None))
        return await asyncio.shield(measuring)  # a cancelled caller does not cancel the others

    async def _measure_miss(
        self, task: str, num_agents: int, model: str | None, fields: dict[str, Any], key: str
    ) -> BaselineResult:
        results = await asyncio.gather(*(self._one(task, i, model) for i in range(num_agents)))
        calls = self.calls_per_baseline(num_agents)
        self.stats.api_calls_made += calls
        answers = [text for text, _, _ in results]
        scores = [score for _, score, _ in results if score is not None]
        failures = sum(1 for _, score, _ in results if score is None)
        cost = sum_costs([c for _, _, c in results])
        if not scores:
            raise BaselineError(
                f"no baseline score for the task: all {num_agents} judge verdicts failed to parse",
                context={"key": key},
            )
        self._store(key, fields, {"scores": scores, "answers": answers, "judge_failures": failures})
        return BaselineResult(scores, answers, False, calls, failures, key, cost)
