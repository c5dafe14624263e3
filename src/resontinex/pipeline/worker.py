"""The one owner of a loaded model: every use of its weights is a job on the worker's thread.

Why a single owner: cert-trajectory measures a generation through a forward hook attached to the
model for the whole generate() call, and any other forward pass on the same module object in that
time is recorded as the answer's. The drift watch's fingerprint probes ran in another thread,
so under load an answer was scored with the probes' logits (same text, perplexity 16 → 400,
decision review → abort). Here one thread holds the model, the tokenizer and every hook, and
generation, teacher-forced scoring and fingerprint probes are jobs queued to it: no other code
can touch the model object, by construction rather than by a lock around one call site.

The same queue gives micro-batching: generation jobs with the same decoding config that arrive
within ``batch_window_s`` of each other, once the worker is free, run as one left-padded batch
through cert-trajectory's batch path (``HamiltonianMonitor.analyze_batch``). A batch that fails is re-run one job at a
time, so a bad request fails alone and never takes its batch-mates with it.

Every generation reuses the keys and values of prompt prefixes the model has seen before (the
router's micro-overlay, about 1,100 tokens, is the same for every request it routes there), so
a request computes only its own prompt and its answer: cert-trajectory's prefix cache, owned by
the monitor on this thread. ``prefix_cache_tokens=0`` turns it off.

Background jobs (fingerprint probes) run only when no request waits, except that one which has
waited ``background_max_wait_s`` runs next, so a continuous load cannot starve the drift watch.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import copy
import functools
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cert.trajectory import HamiltonianMonitor, TrajectoryConfig, TrajectoryResult
from cert.trajectory.engine import model_position_limit
from cert.trajectory.loading import load_model_for_monitoring
from resontinex.pipeline.errors import PipelineConfigError, PipelineError, PipelineInputError

log = logging.getLogger("resontinex.pipeline.worker")

#: Characters are not what limits a prompt (tokens are, checked against the model's context);
#: this only keeps cert-trajectory's own character guard from cutting in below the token limit.
_MAX_PROMPT_CHARS = 200_000
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
_COUNTS_REMEMBERED = 64  # prompts in flight at once, roughly; at most 64 x 200,000 characters


class WorkerClosedError(PipelineError):
    """A job was submitted to (or pending on) a worker that has been closed."""


@dataclass(frozen=True)
class Batched:
    """A generation and how it was served: the batch it shared and its wait in the queue."""

    result: TrajectoryResult
    batch_size: int
    queued_s: float


@dataclass
class _Job:
    """A generation (``prompt`` and ``config``) or any other use of the model (``work``)."""

    prompt: str = ""
    config: TrajectoryConfig | None = None
    work: Callable[[], Any] | None = None
    future: concurrent.futures.Future[Any] = field(default_factory=concurrent.futures.Future)
    enqueued: float = 0.0


class ModelWorker:
    """A local causal LM, its tokenizer and its monitor, owned by one thread.

    ``batch_window_s`` (default 20 ms) is how long a batch waits for company once the worker is
    free to run it, renewed by every arrival up to four windows in all (see :meth:`_next_jobs`),
    and cut short once every expected :meth:`caller` is in the batch; ``max_batch`` bounds the
    batch. ``max_batch=1`` turns batching off (the benchmark's baseline).
    ``prefix_cache_tokens`` bounds the cached prompt prefixes (0: off). Close the worker with
    :meth:`close` (or use it as a context manager).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        registry: Any = None,
        device: str = "cpu",
        batch_window_s: float = 0.02,
        max_batch: int = 16,
        background_max_wait_s: float = 0.5,
        prefix_cache_tokens: int = 32_768,
    ) -> None:
        if (
            isinstance(max_batch, bool)
            or not isinstance(max_batch, int)
            or not 1 <= max_batch <= 64
        ):
            raise PipelineConfigError(f"max_batch must be an integer in [1, 64], got {max_batch!r}")
        if (
            isinstance(prefix_cache_tokens, bool)
            or not isinstance(prefix_cache_tokens, int)
            or prefix_cache_tokens < 0
        ):
            raise PipelineConfigError(
                f"prefix_cache_tokens must be a non-negative integer, got {prefix_cache_tokens!r}"
            )
        for name, value in (
            ("batch_window_s", batch_window_s),
            ("background_max_wait_s", background_max_wait_s),
        ):
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0 <= value <= 10
            ):
                raise PipelineConfigError(f"{name} must be seconds in [0, 10], got {value!r}")
        model, tokenizer = load_model_for_monitoring(str(path), device=device)
        self.path = str(path)
        self.batch_window_s = float(batch_window_s)
        self.max_batch = max_batch
        self.background_max_wait_s = float(background_max_wait_s)
        # No timeout: a deadline would cut a batch short by its slowest member, making a result
        # depend on its batch-mates; max_new_tokens already bounds every generation.
        self._monitor = HamiltonianMonitor(
            model=model,
            tokenizer=tokenizer,
            registry=registry,
            cache_size=0,
            timeout=None,
            prefix_cache_tokens=prefix_cache_tokens,
        )
        self._monitor.load()
        self._model, self._tokenizer = model, tokenizer
        # Counting must not wait behind generation, and a fast tokenizer used from two threads
        # at once fails ("Already borrowed"): counting gets its own copy and its own lock.
        self._counter = copy.deepcopy(tokenizer)
        self._counter_lock = threading.Lock()
        self._counted: OrderedDict[str, int] = OrderedDict()
        self.vocab_size = int(getattr(model.config, "vocab_size", 0) or len(tokenizer))
        self.context_tokens = model_position_limit(model)
        self._batch_sizes = _batch_histogram(registry)
        self._requests: deque[_Job] = deque()
        self._background: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._callers = 0  # see caller()
        self._departures: deque[float] = deque()
        self._thread = threading.Thread(target=self._loop, name=f"model-worker:{path}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ public API
    @property
    def model_id(self) -> str:
        return self.path

    def prefix_cache_info(self) -> dict[str, int] | None:
        """The prefix cache's entries, tokens held, reused and computed; None when it is off."""
        return self._monitor.prefix_cache_info()

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` by this model's own tokenizer (special tokens included).

        A request's overlaid prompt is counted when it is checked and again when its cost is
        committed: the last few counts are remembered (a 1,100-token prompt takes 1.5 ms of the
        event loop to tokenize, and the loop is where batches wait for their requests).
        """
        with self._counter_lock:
            count = self._counted.get(text)
            if count is None:
                count = len(self._counter(text)["input_ids"])
                self._counted[text] = count
                if len(self._counted) > _COUNTS_REMEMBERED:
                    self._counted.popitem(last=False)
            return count

    def check_fits(self, prompt: str, max_new_tokens: int) -> int:
        """The prompt's token count, or :class:`PipelineInputError` naming the context limit."""
        tokens = self.count_tokens(prompt)
        if self.context_tokens is not None and tokens + max_new_tokens > self.context_tokens:
            raise PipelineInputError(
                f"prompt: the prompt as sent to the model (with its overlay) has {tokens} tokens; "
                f"with max_new_tokens={max_new_tokens} that exceeds the model's context of "
                f"{self.context_tokens} tokens (limit for this request: "
                f"{self.context_tokens - max_new_tokens} prompt tokens)"
            )
        return tokens

    def generation_config(self, max_new_tokens: int) -> TrajectoryConfig:
        """The monitor's config for a request of ``max_new_tokens`` (greedy, wide char guard)."""
        return TrajectoryConfig(max_new_tokens=max_new_tokens, max_prompt_chars=_MAX_PROMPT_CHARS)

    @contextlib.contextmanager
    def caller(self) -> Iterator[None]:
        """Mark a request that may submit generations while inside (the pipeline wraps each run).

        A batch waits for company only while some expected caller is not in it yet: a lone
        request starts at once, and a batch starts as soon as the last one has joined, not a
        window later. Expected: the callers inside, whether or not their generation is done,
        and those that left within the last window, not yet matched by an arrival; under a
        steady load each comes straight back with its next request.
        """
        with self._cond:
            self._forget_departures(time.monotonic())
            if self._departures:
                self._departures.popleft()  # this arrival is, or stands for, a returning caller
            self._callers += 1
        try:
            yield
        finally:
            with self._cond:
                self._callers -= 1
                self._departures.append(time.monotonic())

    def _forget_departures(self, now: float) -> None:
        while self._departures and now - self._departures[0] > self.batch_window_s:
            self._departures.popleft()

    async def generate(self, prompt: str, config: TrajectoryConfig) -> Batched:
        """Generate from ``prompt`` and measure its tokens (micro-batched with its peers)."""
        job = self._submit(_Job(prompt, config))
        return await asyncio.wrap_future(job.future)

    async def score(self, prompt: str, response: str) -> TrajectoryResult:
        """Teacher-force ``response`` after ``prompt`` and measure its tokens."""
        config = self.generation_config(1)
        job = self._submit(_Job(work=lambda: self._monitor.score(prompt, response, config=config)))
        return await asyncio.wrap_future(job.future)

    def run_background(self, work: Callable[[Any, Any], Any]) -> Any:
        """Run ``work(model, tokenizer)`` on the worker thread in idle time; block for its result.

        For callers on other threads (hbt-core's fingerprinting). Never call it from the worker
        thread itself, which would wait for itself.
        """
        if threading.current_thread() is self._thread:
            raise PipelineError("run_background called from the model worker's own thread")
        job = self._submit(_Job(work=lambda: work(self._model, self._tokenizer)), background=True)
        return job.future.result()

    def logit_model(self, name: str | None = None) -> WorkerLogitModel:
        """This model as an hbt-core logit/text model whose probes are background jobs here."""
        return WorkerLogitModel(self, name or self.model_id)

    def close(self) -> None:
        """Stop the thread; jobs still queued fail with :class:`WorkerClosedError`."""
        with self._cond:
            self._closed = True
            pending = [*self._requests, *self._background]
            self._requests.clear()
            self._background.clear()
            self._cond.notify_all()
        for job in pending:
            if job.future.set_running_or_notify_cancel():  # False: its caller already gave up
                job.future.set_exception(WorkerClosedError(f"model worker {self.path} is closed"))
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def __enter__(self) -> ModelWorker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the worker thread
    def _submit(self, job: _Job, *, background: bool = False) -> _Job:
        job.enqueued = time.monotonic()
        with self._cond:
            if self._closed:
                raise WorkerClosedError(f"model worker {self.path} is closed")
            (self._background if background else self._requests).append(job)
            self._cond.notify_all()
        return job

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not (self._requests or self._background or self._closed):
                    self._cond.wait()
                if self._closed:
                    return
                jobs = self._next_jobs()
            # a caller that gave up (cancelled) is dropped here, before any work is done for it
            jobs = [j for j in jobs if j.future.set_running_or_notify_cancel()]
            if jobs:
                self._run(jobs)

    def _next_jobs(self) -> list[_Job]:
        """The next job, or batch of generation jobs; called holding the condition.

        Why the window opens now, not when the first job was queued: under load the jobs queued
        during a batch would otherwise start at once, without the callers that batch has just
        released, and batches alternate between two halves of the load (a mean of 4 at
        concurrency 8). Each arrival keeps the window open, since released callers come back
        one after another, each after its own routing; four windows bound the wait. The batch
        starts before that once every expected caller (see :meth:`caller`) is in it.
        """
        starved = (
            self._background
            and time.monotonic() - self._background[0].enqueued >= self.background_max_wait_s
        )
        if not self._requests or starved:
            return [self._background.popleft()]
        first = self._requests.popleft()
        if first.work is not None or self.max_batch == 1:
            return [first]
        batch = [first]
        opened = time.monotonic()
        latest = opened + 4 * self.batch_window_s
        deadline = opened + self.batch_window_s
        while True:
            size = len(batch)
            for job in [j for j in self._requests if _same_batch(j, first)]:
                if len(batch) == self.max_batch:
                    break
                self._requests.remove(job)
                batch.append(job)
            now = time.monotonic()
            if len(batch) > size:  # company arrived: keep the window open
                deadline = min(latest, now + self.batch_window_s)
            left = deadline - now
            self._forget_departures(now)
            everyone = 0 < self._callers + len(self._departures) <= len(batch)
            if len(batch) == self.max_batch or left <= 0 or everyone or self._closed:
                return batch
            self._cond.wait(left)

    def _run(self, jobs: list[_Job]) -> None:
        started = time.monotonic()
        work = jobs[0].work
        if work is not None:
            _settle(jobs[0], work)
            return
        if self._batch_sizes is not None:
            self._batch_sizes.observe(len(jobs))
        config = jobs[0].config
        try:
            results = self._monitor.analyze_batch(
                [j.prompt for j in jobs], config=config, batch_size=len(jobs)
            )
        except Exception as exc:
            if len(jobs) == 1:
                jobs[0].future.set_exception(exc)
                return
            log.warning("batch failed; running its jobs one at a time", extra={"size": len(jobs)})
            for job in jobs:
                _settle(job, functools.partial(self._generate_alone, job, time.monotonic()))
            return
        for job, result in zip(jobs, results, strict=True):
            job.future.set_result(Batched(result, len(jobs), started - job.enqueued))

    def _generate_alone(self, job: _Job, started: float) -> Batched:
        (result,) = self._monitor.analyze_batch([job.prompt], config=job.config, batch_size=1)
        return Batched(result, 1, started - job.enqueued)


class WorkerLogitModel:
    """hbt-core's LogitModel and TextModel protocols, served by a :class:`ModelWorker`.

    The arithmetic is hbt-core's ``TransformersLogitModel``'s; only where it runs differs.
    """

    def __init__(self, worker: ModelWorker, name: str) -> None:
        self.worker = worker
        self.name = name

    def next_token_distributions(self, prompt: bytes, positions: int) -> Any:
        from hbt_core.models import TransformersLogitModel

        return self.worker.run_background(
            lambda model, tokenizer: TransformersLogitModel(
                model, tokenizer, self.name
            ).next_token_distributions(prompt, positions)
        )

    def generate(self, prompt: bytes, max_new_tokens: int, seed: int) -> bytes:
        from hbt_core.models import TransformersLogitModel

        result: bytes = self.worker.run_background(
            lambda model, tokenizer: TransformersLogitModel(model, tokenizer, self.name).generate(
                prompt, max_new_tokens, seed
            )
        )
        return result


def _same_batch(job: _Job, first: _Job) -> bool:
    return job.work is None and job.config == first.config


def _settle(job: _Job, work: Callable[[], Any]) -> None:
    """Run ``work`` and put its result or its exception into the job's (running) future."""
    try:
        job.future.set_result(work())
    except Exception as exc:
        job.future.set_exception(exc)


def _batch_histogram(registry: Any) -> Any:
    if registry is None:
        return None
    from prometheus_client import Histogram

    return Histogram(
        "resontinex_pipeline_batch_size",
        "Generation requests served by one forward batch",
        buckets=_BATCH_BUCKETS,
        registry=registry,
    )
