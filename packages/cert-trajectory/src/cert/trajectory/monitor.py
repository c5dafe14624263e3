"""HamiltonianMonitor: the service-facing API around the engine.

The name is the seed's; nothing here is Hamiltonian. It monitors per-token log-probability,
surprise and entropy of a causal LM and adds what a service needs: loading and unloading, one
lock around the model (thread-safe), a result cache for deterministic (greedy) decoding only,
batching, timeouts that return partial results, a one-time CUDA out-of-memory fallback to CPU,
metrics on a caller-given registry, structured logs and a cheap health check.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Literal

from cert.runtime.health import CheckResult, HealthRegistry, HealthReport, HealthStatus
from cert.runtime.logging import get_logger
from cert.runtime.metrics import MetricsFactory
from cert.trajectory.__about__ import __version__
from cert.trajectory.config import TrajectoryConfig
from cert.trajectory.engine import (
    RawTrajectory,
    ScoreTokenisation,
    generate_trajectories,
    score_trajectory,
)
from cert.trajectory.errors import (
    ConfigError,
    DeviceOutOfMemoryError,
    InvalidPromptError,
    ModelNotLoadedError,
)
from cert.trajectory.loading import load_model_for_monitoring, parse_device
from cert.trajectory.prefix import PrefixCache
from cert.trajectory.result import TokenSignal, TrajectoryResult, quality_failures
from cert.trajectory.signals import summarize

__all__ = ["HamiltonianMonitor", "ReasoningTrajectoryMonitor", "TrajectoryMonitor"]

_LOG = get_logger("cert.trajectory.monitor")
_MAX_BATCH_PROMPTS = 10_000
_ENTROPY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 11.0)
_SURPRISE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0)


def _check_text(name: str, value: object, max_chars: int) -> str:
    if not isinstance(value, str):
        raise InvalidPromptError(
            f"{name} must be a string, got {type(value).__name__}",
            context={"field": name, "value": repr(value)[:100]},
        )
    if not value.strip():
        raise InvalidPromptError(
            f"{name} is empty or whitespace only", context={"field": name, "value": value[:100]}
        )
    if len(value) > max_chars:
        raise InvalidPromptError(
            f"{name} has {len(value)} characters, more than max_prompt_chars={max_chars}",
            context={"field": name, "value": len(value)},
        )
    return value


def _check_timeout(timeout: object) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise ConfigError(
            f"timeout must be a number of seconds or None, got {timeout!r}",
            context={"field": "timeout", "value": repr(timeout)},
        )
    if not math.isfinite(timeout) or timeout <= 0:
        raise ConfigError(
            f"timeout must be a positive finite number of seconds, got {timeout!r}",
            context={"field": "timeout", "value": repr(timeout)},
        )
    return float(timeout)


def _is_device_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError)


class _ResultCache:
    """A thread-safe LRU of results of deterministic analyses."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[tuple[str, ...], TrajectoryResult] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[str, ...]) -> TrajectoryResult | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return found

    def put(self, key: tuple[str, ...], result: TrajectoryResult) -> None:
        if self.maxsize == 0:
            return
        with self._lock:
            self._items[key] = result
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def info(self) -> dict[str, int]:
        with self._lock:
            return {
                "hits": self.hits,
                "misses": self.misses,
                "size": len(self._items),
                "maxsize": self.maxsize,
            }


class _Metrics:
    def __init__(self, factory: MetricsFactory) -> None:
        self.analyses = factory.counter(
            "cert_trajectory_analyses_total", "Analyses completed", ["mode", "outcome"]
        )
        self.quality_failures = factory.counter(
            "cert_trajectory_quality_failures_total", "Failed quality checks by check", ["check"]
        )
        self.entropy = factory.histogram(
            "cert_trajectory_token_entropy_nats",
            "Full-vocabulary entropy per token",
            buckets=_ENTROPY_BUCKETS,
        )
        self.surprise = factory.histogram(
            "cert_trajectory_token_surprise_nats",
            "Surprise (-log p) per token",
            buckets=_SURPRISE_BUCKETS,
        )
        self.latency = factory.histogram(
            "cert_trajectory_analysis_duration_seconds", "Wall time per model call", ["mode"]
        )
        self.cache_hits = factory.counter("cert_trajectory_cache_hits_total", "Result cache hits")
        self.cache_misses = factory.counter(
            "cert_trajectory_cache_misses_total", "Result cache misses (greedy configs only)"
        )
        self.cpu_fallbacks = factory.counter(
            "cert_trajectory_cpu_fallbacks_total", "Switches to CPU after device out-of-memory"
        )
        self.truncated = factory.counter(
            "cert_trajectory_truncated_total", "Responses cut short by the timeout"
        )
        self.prefix_tokens = factory.counter(
            "cert_trajectory_prefix_cache_tokens_total",
            "Prompt tokens taken from the prefix cache (reused) or computed to fill it",
            ["kind"],
        )


class HamiltonianMonitor:
    """Per-token perplexity and entropy monitor of a transformers causal LM.

    Give either ``model_name`` (a local path or hub name, loaded with
    :func:`load_model_for_monitoring`) or ``model`` and ``tokenizer`` objects. With
    ``preload=True`` the model loads in the constructor; otherwise call :meth:`load` or use the
    monitor as a context manager (which loads on entry and unloads on exit).

    ``prefix_cache_tokens > 0`` keeps the keys and values of prompt prefixes that recur (a
    shared system text or overlay) for up to that many tokens, so :meth:`analyze_batch` computes
    only the rest of each prompt (:class:`~cert.trajectory.prefix.PrefixCache`); 0, the default,
    computes every prompt in full. The cache is emptied with the model (unload, CPU fallback).
    """

    def __init__(
        self,
        model_name: str | None = None,
        *,
        model: Any = None,
        tokenizer: Any = None,
        config: TrajectoryConfig | None = None,
        preload: bool = False,
        device: str = "auto",
        dtype: object = None,
        use_8bit: bool = False,
        trust_remote_code: bool = False,
        cpu_fallback: bool = True,
        cache_size: int = 1000,
        timeout: float | None = 60.0,
        registry: Any = None,
        metrics_enabled: bool = True,
        prefix_cache_tokens: int = 0,
    ) -> None:
        if (model_name is None) == (model is None):
            raise ConfigError(
                "give exactly one of model_name or model (with tokenizer)",
                context={"field": "model_name", "value": repr(model_name)},
            )
        if model is not None and tokenizer is None:
            raise ConfigError(
                "a model object needs its tokenizer", context={"field": "tokenizer", "value": None}
            )
        if config is not None and not isinstance(config, TrajectoryConfig):
            raise ConfigError(
                f"config must be a TrajectoryConfig, got {type(config).__name__}",
                context={"field": "config", "value": repr(config)[:100]},
            )
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise ConfigError(
                f"cache_size must be a non-negative integer, got {cache_size!r}",
                context={"field": "cache_size", "value": repr(cache_size)},
            )
        if (
            isinstance(prefix_cache_tokens, bool)
            or not isinstance(prefix_cache_tokens, int)
            or prefix_cache_tokens < 0
        ):
            raise ConfigError(
                f"prefix_cache_tokens must be a non-negative integer, got {prefix_cache_tokens!r}",
                context={"field": "prefix_cache_tokens", "value": repr(prefix_cache_tokens)},
            )
        self._prefix = PrefixCache(prefix_cache_tokens) if prefix_cache_tokens else None
        self.config = config or TrajectoryConfig()
        self._model_name = model_name
        self._given = (model, tokenizer) if model is not None else None
        self._device_request = device
        parse_device(device)  # validate early; resolve at load time
        self._dtype = dtype
        self._use_8bit = bool(use_8bit)
        self._trust_remote_code = bool(trust_remote_code)
        self._cpu_fallback = bool(cpu_fallback)
        self._default_timeout = _check_timeout(timeout)
        self._lock = threading.RLock()
        self._model: Any = None
        self._tokenizer: Any = None
        self._device = "unloaded"
        self._fell_back = False
        self._cache = _ResultCache(cache_size)
        self._metrics = _Metrics(MetricsFactory(registry, enabled=metrics_enabled))
        self._health = HealthRegistry()
        self._deep_health = HealthRegistry()
        for registry in (self._health, self._deep_health):
            registry.register("model_loaded", self._check_loaded, critical=True)
            registry.register("device", self._check_device, critical=False)
        # One persistent registry: a hung probe stays its single in-flight worker (reported
        # pending) instead of costing a new thread, or a blocked caller, per health call.
        self._deep_health.register(
            "generation_probe", self._probe, critical=True, timeout_s=self._default_timeout
        )
        if preload:
            self.load()

    # ------------------------------------------------------------------ lifecycle
    @property
    def model_id(self) -> str:
        if self._model_name is not None:
            return self._model_name
        model = self._given[0] if self._given else None
        name = getattr(getattr(model, "config", None), "_name_or_path", "") or ""
        return name or f"{type(model).__name__}@{id(model):x}"

    @property
    def is_loaded(self) -> bool:
        return self._model is not None

    @property
    def device(self) -> str:
        return self._device

    def load(self) -> HamiltonianMonitor:
        """Load the model (idempotent) and check the thresholds against its vocabulary."""
        with self._lock:
            if self._model is not None:
                return self
            if self._given is not None:
                model, tokenizer = self._given
                device = self._place_given(model)
            else:
                assert self._model_name is not None
                model, tokenizer = load_model_for_monitoring(
                    self._model_name,
                    device=self._device_request,
                    dtype=self._dtype,
                    use_8bit=self._use_8bit,
                    trust_remote_code=self._trust_remote_code,
                )
                device = str(next(model.parameters()).device.type)
            self.config.check_against_vocab(self._vocab_size(model, tokenizer))
            if tokenizer.pad_token is None and tokenizer.eos_token is not None:
                # GPT-2-style tokenizers have no pad token; left padding with EOS is masked out
                tokenizer.pad_token = tokenizer.eos_token
            self._model, self._tokenizer, self._device = model, tokenizer, device
            _LOG.info("model loaded", extra={"model_id": self.model_id, "device": device})
            return self

    def _place_given(self, model: Any) -> str:
        """Use a given model where it is, or move it to an explicitly requested device."""
        if self._device_request == "auto":
            return str(next(model.parameters()).device.type)
        model.to(self._device_request)
        return self._device_request

    def unload(self) -> None:
        """Drop the model and tokenizer (and the cache, which belongs to this model)."""
        with self._lock:
            self._model = None
            self._tokenizer = None
            self._device = "unloaded"
            self._cache.clear()
            if self._prefix is not None:
                self._prefix.clear()

    def __enter__(self) -> HamiltonianMonitor:
        return self.load()

    def __exit__(self, *exc_info: object) -> None:
        self.unload()

    @staticmethod
    def _vocab_size(model: Any, tokenizer: Any) -> int:
        size = getattr(getattr(model, "config", None), "vocab_size", None)
        return int(size) if isinstance(size, int) and size > 1 else len(tokenizer)

    # ------------------------------------------------------------------ analysis
    def analyze(
        self, prompt: str, *, config: TrajectoryConfig | None = None, timeout: float | None = None
    ) -> TrajectoryResult:
        """Generate from ``prompt`` and measure every emitted token."""
        return self.analyze_batch([prompt], config=config, timeout=timeout, batch_size=1)[0]

    def analyze_batch(
        self,
        prompts: Sequence[str],
        *,
        config: TrajectoryConfig | None = None,
        timeout: float | None = None,
        batch_size: int = 8,
    ) -> list[TrajectoryResult]:
        """Analyse many prompts in left-padded tensor batches; results keep the input order.

        ``timeout`` bounds the whole call: each batch gets the time that is left, and a batch
        that runs out returns its partial responses flagged ``truncated``.
        """
        cfg = self._config_for(config)
        if isinstance(prompts, str) or not isinstance(prompts, Sequence):
            raise InvalidPromptError(
                f"prompts must be a sequence of strings, got {type(prompts).__name__}",
                context={"field": "prompts", "value": repr(prompts)[:100]},
            )
        if not prompts or len(prompts) > _MAX_BATCH_PROMPTS:
            raise InvalidPromptError(
                f"prompts must hold 1 to {_MAX_BATCH_PROMPTS} prompts, got {len(prompts)}",
                context={"field": "prompts", "value": len(prompts)},
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(
                f"batch_size must be a positive integer, got {batch_size!r}",
                context={"field": "batch_size", "value": repr(batch_size)},
            )
        texts = [
            _check_text(f"prompts[{i}]", p, cfg.max_prompt_chars) for i, p in enumerate(prompts)
        ]
        budget = _check_timeout(timeout) if timeout is not None else self._default_timeout
        deadline = None if budget is None else time.monotonic() + budget

        results: list[TrajectoryResult | None] = [None] * len(texts)
        pending: list[int] = []
        for index, text in enumerate(texts):
            hit = self._cache_get(text, cfg)
            if hit is not None:
                results[index] = hit
            else:
                pending.append(index)
        for start in range(0, len(pending), batch_size):
            chunk = pending[start : start + batch_size]
            max_time = None if deadline is None else max(deadline - time.monotonic(), 1e-3)
            chunk_prompts = [texts[i] for i in chunk]
            began = time.perf_counter()
            before = self._prefix_counts()
            raws, fell_back = self._run_on_model(
                lambda model, tok, ps=chunk_prompts, mt=max_time: generate_trajectories(
                    model, tok, ps, cfg, max_time=mt, prefix_cache=self._prefix
                )
            )
            elapsed = time.perf_counter() - began
            self._count_prefix_tokens(before)
            self._metrics.latency.labels(mode="generate").observe(elapsed)
            for index, raw in zip(chunk, raws, strict=True):
                result = self._build_result(texts[index], None, raw, cfg, elapsed, fell_back)
                results[index] = result
                if cfg.greedy and not result.truncated and self._cache.maxsize:
                    self._cache.put(self._cache_key(texts[index], cfg), result)
        return [r for r in results if r is not None]

    def score(
        self,
        prompt: str,
        response: str,
        *,
        config: TrajectoryConfig | None = None,
        chat_template: bool = False,
        system: str | None = None,
        tokenisation: ScoreTokenisation = "joint",
    ) -> TrajectoryResult:
        """Teacher-force a given ``response`` (from any source) and measure its tokens.

        ``chat_template=True`` conditions on the tokenizer's chat template (``system`` and
        ``prompt`` as the user turn, then the assistant generation prompt), as a chat model sees
        a conversation. ``tokenisation="joint"`` (default) tokenises context and response as one
        text; ``"separate"`` tokenises the response on its own (the pre-0.2 behaviour). How the
        input was tokenised is recorded in ``result.decoding``.
        """
        cfg = self._config_for(config)
        prompt = _check_text("prompt", prompt, cfg.max_prompt_chars)
        response = _check_text("response", response, cfg.max_prompt_chars)
        if system is not None:
            system = _check_text("system", system, cfg.max_prompt_chars)
        began = time.perf_counter()
        raw, fell_back = self._run_on_model(
            lambda model, tok: score_trajectory(
                model,
                tok,
                prompt,
                response,
                cfg,
                tokenisation=tokenisation,
                chat_template=chat_template,
                system=system,
            )
        )
        elapsed = time.perf_counter() - began
        self._metrics.latency.labels(mode="score").observe(elapsed)
        return self._build_result(prompt, response, raw, cfg, elapsed, fell_back)

    async def analyze_async(
        self, prompt: str, *, config: TrajectoryConfig | None = None, timeout: float | None = None
    ) -> TrajectoryResult:
        """analyze() in a worker thread, so the event loop keeps running."""
        return await asyncio.to_thread(self.analyze, prompt, config=config, timeout=timeout)

    async def analyze_batch_async(
        self,
        prompts: Sequence[str],
        *,
        config: TrajectoryConfig | None = None,
        timeout: float | None = None,
        batch_size: int = 8,
    ) -> list[TrajectoryResult]:
        return await asyncio.to_thread(
            self.analyze_batch, prompts, config=config, timeout=timeout, batch_size=batch_size
        )

    async def score_async(
        self,
        prompt: str,
        response: str,
        *,
        config: TrajectoryConfig | None = None,
        chat_template: bool = False,
        system: str | None = None,
        tokenisation: ScoreTokenisation = "joint",
    ) -> TrajectoryResult:
        """score() in a worker thread, so the event loop keeps running."""
        return await asyncio.to_thread(
            self.score,
            prompt,
            response,
            config=config,
            chat_template=chat_template,
            system=system,
            tokenisation=tokenisation,
        )

    # ------------------------------------------------------------------ health and cache
    def health_check(self, *, deep: bool = False) -> HealthReport:
        """Cheap by default (no generation); ``deep=True`` adds a one-token generation probe.

        The probe answers within the monitor's ``timeout`` or reads pending (unhealthy); while
        one probe runs, further deep checks wait on it rather than starting another.
        """
        return (self._deep_health if deep else self._health).check()

    def cache_info(self) -> dict[str, int]:
        return self._cache.info()

    def prefix_cache_info(self) -> dict[str, int] | None:
        """Entries, tokens held and reused of the prefix cache; None when it is off."""
        return None if self._prefix is None else self._prefix.info()

    def _prefix_counts(self) -> tuple[int, int]:
        if self._prefix is None:
            return (0, 0)
        info = self._prefix.info()
        return info["reused_tokens"], info["computed_tokens"]

    def _count_prefix_tokens(self, before: tuple[int, int]) -> None:
        reused, computed = self._prefix_counts()
        if reused > before[0]:
            self._metrics.prefix_tokens.labels(kind="reused").inc(reused - before[0])
        if computed > before[1]:
            self._metrics.prefix_tokens.labels(kind="computed").inc(computed - before[1])

    def clear_cache(self) -> None:
        self._cache.clear()

    def _check_loaded(self) -> CheckResult:
        if self._model is None:
            return CheckResult("model_loaded", HealthStatus.UNHEALTHY, "model not loaded")
        return CheckResult(
            "model_loaded", HealthStatus.HEALTHY, self.model_id, {"device": self._device}
        )

    def _check_device(self) -> CheckResult:
        if self._fell_back:
            return CheckResult(
                "device", HealthStatus.DEGRADED, "running on the CPU fallback after device OOM"
            )
        return CheckResult("device", HealthStatus.HEALTHY, self._device)

    def _probe(self) -> CheckResult:
        probe = TrajectoryConfig(max_new_tokens=1, max_mean_entropy=self.config.max_mean_entropy)
        result = self.analyze_batch(["Hello"], config=probe, timeout=None)[0]
        return CheckResult(
            "generation_probe", HealthStatus.HEALTHY, "one token generated",
            {"elapsed_s": result.elapsed_s},
        )  # fmt: skip

    # ------------------------------------------------------------------ internals
    def _config_for(self, config: TrajectoryConfig | None) -> TrajectoryConfig:
        if config is None:
            return self.config
        if not isinstance(config, TrajectoryConfig):
            raise ConfigError(
                f"config must be a TrajectoryConfig, got {type(config).__name__}",
                context={"field": "config", "value": repr(config)[:100]},
            )
        if self._model is not None:
            config.check_against_vocab(self._vocab_size(self._model, self._tokenizer))
        return config

    def _cache_key(self, prompt: str, config: TrajectoryConfig) -> tuple[str, ...]:
        return (prompt, self.model_id, config.fingerprint(), __version__)

    def _cache_get(self, prompt: str, config: TrajectoryConfig) -> TrajectoryResult | None:
        if not config.greedy or self._cache.maxsize == 0:
            return None
        hit = self._cache.get(self._cache_key(prompt, config))
        if hit is None:
            self._metrics.cache_misses.inc()
            return None
        self._metrics.cache_hits.inc()
        return hit.with_flags(cached=True)

    def _run_on_model(self, work: Any) -> tuple[Any, bool]:
        """Run ``work(model, tokenizer)`` under the model lock, with the one-time CPU fallback."""
        with self._lock:
            if self._model is None:
                raise ModelNotLoadedError(
                    "the model is not loaded: call load() or use preload=True",
                    context={"model_id": self.model_id},
                )
            try:
                return work(self._model, self._tokenizer), self._fell_back
            except Exception as exc:
                if not _is_device_oom(exc):
                    raise
                if not self._cpu_fallback or self._device == "cpu":
                    raise DeviceOutOfMemoryError(
                        f"out of memory on {self._device}: {exc}",
                        context={"device": self._device, "cpu_fallback": self._cpu_fallback},
                    ) from exc
                self._fall_back_to_cpu(exc)
            return work(self._model, self._tokenizer), True

    def _fall_back_to_cpu(self, exc: BaseException) -> None:
        """Move the model to CPU once and keep it there (no reload per request)."""
        import torch

        previous = self._device
        try:
            self._model = self._model.to("cpu")
        except (ValueError, RuntimeError, TypeError):  # e.g. 8-bit weights cannot be moved
            if self._model_name is None:
                raise DeviceOutOfMemoryError(
                    f"out of memory on {previous} and the model cannot be moved to CPU",
                    context={"device": previous},
                ) from exc
            self._model, self._tokenizer = load_model_for_monitoring(
                self._model_name,
                device="cpu",
                dtype=torch.float32,
                trust_remote_code=self._trust_remote_code,
            )
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        self._device = "cpu"
        self._fell_back = True
        self._cache.clear()
        if self._prefix is not None:
            self._prefix.clear()
        self._metrics.cpu_fallbacks.inc()
        _LOG.warning(
            "device out of memory; continuing on CPU",
            extra={"model_id": self.model_id, "from_device": previous, "error": str(exc)[:200]},
        )

    def _build_result(
        self,
        prompt: str,
        response: str | None,
        raw: RawTrajectory,
        config: TrajectoryConfig,
        elapsed: float,
        fell_back: bool,
    ) -> TrajectoryResult:
        tokenizer = self._tokenizer
        pieces = tokenizer.batch_decode([[t] for t in raw.token_ids]) if raw.token_ids else []
        tokens = [
            TokenSignal(
                position=i,
                token_id=token_id,
                token=piece,
                log_prob=log_prob,
                surprise=-log_prob,
                entropy=entropy,
                topk_negentropy=negentropy,
                margin=margin,
            )
            for i, (token_id, piece, log_prob, entropy, negentropy, margin) in enumerate(
                zip(
                    raw.token_ids,
                    pieces,
                    raw.log_probs,
                    raw.entropies,
                    raw.topk_negentropies,
                    raw.margins,
                    strict=True,
                )
            )
        ]
        summary = summarize(raw.log_probs, raw.entropies, config.low_prob_threshold)
        failures = quality_failures(summary, config)
        if response is None:
            text = tokenizer.decode(raw.token_ids, skip_special_tokens=True)
        else:
            text = response
        mode: Literal["generate", "score"] = "score" if response is not None else "generate"
        result = TrajectoryResult(
            prompt=prompt,
            text=text,
            mode=mode,
            tokens=tokens,
            perplexity=summary.perplexity,
            mean_entropy=summary.mean_entropy,
            max_entropy=summary.max_entropy,
            cumulative_surprise=summary.cumulative_surprise,
            low_prob_count=summary.low_prob_count,
            low_prob_fraction=summary.low_prob_fraction,
            passed_quality_check=not failures,
            failed_checks=failures,
            finish_reason=raw.finish_reason,
            truncated=raw.finish_reason == "timeout",
            decoding=(
                config.decoding()
                if response is None
                else {"strategy": "teacher_forced", **(raw.scoring or {})}
            ),
            thresholds={
                "max_perplexity": config.max_perplexity,
                "max_mean_entropy": config.max_mean_entropy,
                "max_low_prob_fraction": config.max_low_prob_fraction,
                "low_prob_threshold": config.low_prob_threshold,
            },
            model_id=self.model_id,
            device=self._device,
            cpu_fallback=fell_back,
            elapsed_s=elapsed,
            version=__version__,
        )
        self._record(result)
        return result

    def _record(self, result: TrajectoryResult) -> None:
        outcome = "passed" if result.passed_quality_check else "failed"
        self._metrics.analyses.labels(mode=result.mode, outcome=outcome).inc()
        for check in result.failed_checks:
            self._metrics.quality_failures.labels(check=check).inc()
        for token in result.tokens:
            self._metrics.entropy.observe(token.entropy)
            self._metrics.surprise.observe(token.surprise)
        if result.truncated:
            self._metrics.truncated.inc()
        _LOG.info(
            "trajectory analysed",
            extra={
                "mode": result.mode,
                "model_id": result.model_id,
                "prompt_chars": len(result.prompt),
                "tokens": result.token_count,
                "perplexity": result.perplexity,
                "mean_entropy": result.mean_entropy,
                "passed": result.passed_quality_check,
                "failed_checks": result.failed_checks,
                "finish_reason": result.finish_reason,
                "cpu_fallback": result.cpu_fallback,
            },
        )


TrajectoryMonitor = HamiltonianMonitor
"""The honest name of the same class."""


class ReasoningTrajectoryMonitor:
    """The seed's v3 API: wrap an already loaded ``(model, tokenizer)`` pair."""

    def __init__(self, model: Any, tokenizer: Any, config: TrajectoryConfig | None = None) -> None:
        self.monitor = HamiltonianMonitor(
            model=model, tokenizer=tokenizer, config=config, preload=True, cache_size=0
        )

    def monitor_generation(
        self, prompt: str, *, config: TrajectoryConfig | None = None, timeout: float | None = None
    ) -> TrajectoryResult:
        return self.monitor.analyze(prompt, config=config, timeout=timeout)

    def score_response(self, prompt: str, response: str) -> TrajectoryResult:
        return self.monitor.score(prompt, response)
