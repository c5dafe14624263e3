"""Generation and teacher forcing with per-step signals (no locking, caching or metrics here).

Why a forward hook rather than ``output_logits=True``: the latter keeps a [batch, vocab] tensor
per step (steps × vocabulary floats; 51 MB for 256 steps of a 50k vocabulary), while the
:class:`SignalRecorder` reduces each step to a few numbers as it happens.

Why the signals are raw: the hook reads the model's own output logits, before generate() applies
any logits processor or temperature / top-p warper. (A logits processor would not do: generate()
runs the built-in processors, e.g. a checkpoint's repetition penalty, before user ones, and it
inspects every processor's signature at every step, which cost more than the signals.) Tests
check the recorded values against a plain teacher-forced forward pass, greedy and sampled.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from cert.trajectory.config import TrajectoryConfig
from cert.trajectory.errors import ConfigError, GenerationError, InvalidPromptError
from cert.trajectory.signals import distribution_core, step_statistics, topk_signals

if TYPE_CHECKING:
    import torch

    from cert.trajectory.prefix import PrefixCache

__all__ = ["RawTrajectory", "SignalRecorder", "generate_trajectories", "score_trajectory"]

FinishReason = Literal["eos", "length", "timeout", "scored"]


@dataclass(frozen=True)
class RawTrajectory:
    """Per-token signals of one response before they become a TrajectoryResult."""

    token_ids: list[int]
    log_probs: list[float]
    entropies: list[float]
    topk_negentropies: list[float]
    margins: list[float]
    finish_reason: FinishReason
    scoring: dict[str, Any] | None = None  # how score() tokenised its input (None: generated)


class SignalRecorder:
    """A forward hook that reduces each step's raw next-token logits to a few numbers.

    It sees ``outputs.logits[:, -1]`` of every forward pass generate() makes (one per emitted
    token), which is what generate() itself takes before any logits processor or warper.
    Per step it keeps the entropy, the top-k log-probabilities and, once the next forward
    reveals which token was emitted, that token's log-probability; the latest step's
    [batch, vocab] log-probabilities are the only vocabulary-sized tensor it holds.
    """

    def __init__(self, top_k: int) -> None:
        self.top_k = top_k
        self.entropies: list[torch.Tensor] = []
        self.tops: list[torch.Tensor] = []
        self.chosen_log_probs: list[torch.Tensor] = []
        self._pending: torch.Tensor | None = None

    def hook(self, module: Any, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        logits = output.logits if hasattr(output, "logits") else output[0]
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        if self._pending is not None:
            if input_ids is None:
                raise GenerationError(
                    "the model was called without input_ids; cannot tell which token was emitted",
                    context={"model": type(module).__name__},
                )
            self._take_chosen(input_ids[:, -1])
        log_probs, entropy, top = distribution_core(logits[:, -1], self.top_k)
        self.entropies.append(entropy)
        self.tops.append(top)
        self._pending = log_probs

    def _take_chosen(self, chosen: torch.Tensor) -> None:
        assert self._pending is not None
        pending = self._pending
        self.chosen_log_probs.append(pending.gather(1, chosen.to(pending.device)[:, None])[:, 0])
        self._pending = None

    def finish(self, last_tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """Close the last step with the tokens emitted at it; return [batch, steps] tensors."""
        import torch

        if self._pending is not None:
            self._take_chosen(last_tokens)
        negentropy, margin = topk_signals(torch.stack(self.tops, dim=1))
        return {
            "log_probs": torch.stack(self.chosen_log_probs, dim=1).cpu(),
            "entropies": torch.stack(self.entropies, dim=1).cpu(),
            "negentropies": negentropy.cpu(),
            "margins": margin.cpu(),
        }


def model_position_limit(model: Any) -> int | None:
    """The longest sequence the model's position embeddings allow, if it declares one."""
    config = getattr(model, "config", None)
    for name in ("max_position_embeddings", "n_positions", "n_ctx"):
        value = getattr(config, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _check_length(
    prompt_tokens: int, new_tokens: int, config: TrajectoryConfig, model: Any
) -> None:
    if prompt_tokens == 0:
        raise InvalidPromptError(
            "prompt encodes to zero tokens", context={"field": "prompt", "value": prompt_tokens}
        )
    if prompt_tokens > config.max_prompt_tokens:
        raise InvalidPromptError(
            f"prompt has {prompt_tokens} tokens, more than max_prompt_tokens="
            f"{config.max_prompt_tokens}",
            context={"field": "prompt", "value": prompt_tokens},
        )
    limit = model_position_limit(model)
    if limit is not None and prompt_tokens + new_tokens > limit:
        raise InvalidPromptError(
            f"prompt ({prompt_tokens} tokens) plus {new_tokens} new tokens exceeds the model's "
            f"{limit} positions",
            context={"field": "prompt", "value": prompt_tokens},
        )


def _ensure_finite(values: torch.Tensor, what: str) -> None:
    import torch

    if not bool(torch.isfinite(values).all()):
        raise GenerationError(
            f"the model produced non-finite {what} (NaN/inf logits)", context={"signal": what}
        )


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    """End-of-sequence ids: the model's generation config may list several (chat models)."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = configured if configured is not None else tokenizer.eos_token_id
    if ids is None:
        return []
    return [int(i) for i in ids] if isinstance(ids, (list, tuple)) else [int(ids)]


def _generation_config(
    config: TrajectoryConfig, eos_ids: list[int], tokenizer: Any, max_time: float | None
) -> Any:
    from transformers import GenerationConfig

    pad = tokenizer.pad_token_id
    settings: dict[str, Any] = {
        "max_new_tokens": config.max_new_tokens,
        "eos_token_id": eos_ids or None,
        "pad_token_id": pad if pad is not None else (eos_ids[0] if eos_ids else None),
        "return_dict_in_generate": True,
    }
    if config.greedy:
        settings.update(do_sample=False, num_beams=1)
    else:
        settings.update(do_sample=True, temperature=config.temperature, top_p=config.top_p, top_k=0)
    if max_time is not None:
        settings["max_time"] = max_time
    return GenerationConfig(**settings)


@contextmanager
def _neutral_model_defaults(model: Any) -> Iterator[None]:
    """Hide the checkpoint's generation defaults during one generate() call.

    generate() fills every unset field from ``model.generation_config``; a checkpoint that sets
    e.g. ``repetition_penalty`` or ``min_new_tokens`` would add a processor that runs before the
    recorder and changes the logits it sees. The caller holds the model lock.
    """
    from transformers import GenerationConfig

    saved = getattr(model, "generation_config", None)
    model.generation_config = GenerationConfig()
    try:
        yield
    finally:
        model.generation_config = saved


def generate_trajectories(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    config: TrajectoryConfig,
    *,
    max_time: float | None = None,
    prefix_cache: PrefixCache | None = None,
) -> list[RawTrajectory]:
    """Generate from a batch of prompts (left-padded) and record each response's signals.

    With a ``prefix_cache``, the keys and values of prompt prefixes it holds are taken from it
    and only the rest of each prompt is computed (see :mod:`cert.trajectory.prefix`); position
    ids still come from the attention mask, so a row's tokens keep positions 0..n-1 whatever its
    padding, which is what the cached keys and values were computed at.
    """
    import torch

    from cert.trajectory.kvcache import generation_cache

    if len(prompts) > 1 and tokenizer.pad_token_id is None:
        raise InvalidPromptError(
            "batching needs a pad token, and the tokenizer has neither a pad nor an EOS token",
            context={"field": "prompts", "value": len(prompts)},
        )
    encoded = tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left")
    lengths = encoded["attention_mask"].sum(dim=1).tolist()
    for length in lengths:
        _check_length(int(length), config.max_new_tokens, config, model)
    device = next(model.parameters()).device
    inputs: dict[str, Any] = {
        key: value.to(device) for key, value in encoded.items() if key != "token_type_ids"
    }
    width = int(inputs["input_ids"].shape[1])
    prefix: list[tuple[torch.Tensor, torch.Tensor]] = []
    if prefix_cache is not None:
        rows = [
            ids[width - int(length) :]
            for ids, length in zip(encoded["input_ids"].tolist(), lengths, strict=True)
        ]
        prefix = prefix_cache.plan(model, rows, width).layers
    argument = _cache_argument(model)
    if argument is not None:
        cache = generation_cache(model, width + config.max_new_tokens, prefix)
        if cache is not None:
            inputs[argument] = cache

    recorder = SignalRecorder(config.top_k)
    generator_state = None
    if not config.greedy and config.seed is not None:
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(config.seed)
    eos_ids = _eos_ids(model, tokenizer)
    generation_config = _generation_config(config, eos_ids, tokenizer, max_time)
    handle = model.register_forward_hook(recorder.hook, with_kwargs=True)
    try:
        with torch.inference_mode(), _neutral_model_defaults(model):
            output = model.generate(**inputs, generation_config=generation_config)
    finally:
        handle.remove()
        if generator_state is not None:
            torch.random.set_rng_state(generator_state)

    new_tokens = output.sequences[:, width:].cpu()
    signals = recorder.finish(new_tokens[:, -1])
    _ensure_finite(signals["entropies"], "entropy")
    steps = new_tokens.shape[1]
    stop = set(eos_ids)
    results = []
    for row in range(new_tokens.shape[0]):
        ids = new_tokens[row].tolist()
        first_stop = next((i for i, token in enumerate(ids) if token in stop), None)
        reason: FinishReason
        if first_stop is not None:
            count, reason = first_stop + 1, "eos"
        elif steps >= config.max_new_tokens:
            count, reason = steps, "length"
        else:
            count, reason = steps, "timeout"
        results.append(
            RawTrajectory(
                token_ids=ids[:count],
                log_probs=signals["log_probs"][row, :count].tolist(),
                entropies=signals["entropies"][row, :count].tolist(),
                topk_negentropies=signals["negentropies"][row, :count].tolist(),
                margins=signals["margins"][row, :count].tolist(),
                finish_reason=reason,
            )
        )
    return results


def _cache_argument(model: Any) -> str | None:
    """The name ``model.forward`` takes its key/value cache by (transformers 5.x renamed
    ``past_key_values`` to ``cache``); None when it takes none, and generate() runs uncached."""
    import inspect

    parameters = inspect.signature(model.forward).parameters
    return next((name for name in ("cache", "past_key_values") if name in parameters), None)


ScoreTokenisation = Literal["joint", "separate"]
SCORE_TOKENISATIONS = ("joint", "separate")


@dataclass(frozen=True)
class ScoreInput:
    """The token ids score() feeds the model: the context, then the response it measures."""

    context_ids: list[int]
    response_ids: list[int]
    boundary_merged: bool  # joint: a token spans the end of the context and the response


def score_input_ids(
    tokenizer: Any,
    prompt: str,
    response: str,
    *,
    tokenisation: ScoreTokenisation = "joint",
    chat_template: bool = False,
    system: str | None = None,
) -> ScoreInput:
    """Token ids of ``prompt`` (optionally rendered by the chat template) and ``response``.

    Why joint by default: the model saw (and would have produced) the response as part of one
    text, so ``context + response`` is tokenised once and split where the context's own tokens
    stop matching; tokenising the response alone can split words differently from what the
    model would generate. With ``chat_template`` the context is the tokenizer's chat template
    applied to ``[system], user: prompt`` with the assistant generation prompt, exactly what a
    chat model is conditioned on before it answers.
    """
    if tokenisation not in SCORE_TOKENISATIONS:
        raise ConfigError(
            f"tokenisation must be one of {SCORE_TOKENISATIONS}, got {tokenisation!r}",
            context={"field": "tokenisation", "value": repr(tokenisation)},
        )
    if not isinstance(chat_template, bool):
        raise ConfigError(
            f"chat_template must be a bool, got {chat_template!r}",
            context={"field": "chat_template", "value": repr(chat_template)},
        )
    if system is not None and (not chat_template or not isinstance(system, str)):
        raise ConfigError(
            "system must be a string and needs chat_template=True",
            context={"field": "system", "value": repr(system)[:80]},
        )
    if chat_template:
        if not getattr(tokenizer, "chat_template", None):
            raise ConfigError(
                "chat_template=True but the tokenizer has no chat template",
                context={"field": "chat_template", "value": True},
            )
        messages = [{"role": "system", "content": system}] if system is not None else []
        messages.append({"role": "user", "content": prompt})
        context_text = tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        special = False  # the template writes its own BOS and turn markers
    else:
        context_text, special = prompt, True
    context_ids = list(tokenizer(context_text, add_special_tokens=special)["input_ids"])
    if tokenisation == "separate":
        response_ids = list(tokenizer(response, add_special_tokens=False)["input_ids"])
        return ScoreInput(context_ids, response_ids, boundary_merged=False)
    full = list(tokenizer(context_text + response, add_special_tokens=special)["input_ids"])
    shared = 0
    for mine, joint in zip(context_ids, full, strict=False):  # full may be the shorter
        if mine != joint:
            break
        shared += 1
    return ScoreInput(full[:shared], full[shared:], boundary_merged=shared < len(context_ids))


def score_trajectory(
    model: Any,
    tokenizer: Any,
    prompt: str,
    response: str,
    config: TrajectoryConfig,
    *,
    tokenisation: ScoreTokenisation = "joint",
    chat_template: bool = False,
    system: str | None = None,
) -> RawTrajectory:
    """Teacher-force ``response`` after ``prompt`` and record the signals of its tokens."""
    import torch

    scored = score_input_ids(
        tokenizer,
        prompt,
        response,
        tokenisation=tokenisation,
        chat_template=chat_template,
        system=system,
    )
    prompt_ids, response_ids = scored.context_ids, scored.response_ids
    if not response_ids:
        raise InvalidPromptError(
            "response encodes to zero tokens", context={"field": "response", "value": response}
        )
    _check_length(len(prompt_ids), len(response_ids), config, model)
    device = next(model.parameters()).device
    ids = torch.tensor([prompt_ids + response_ids], device=device)
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0, len(prompt_ids) - 1 : -1]
    stats = step_statistics(logits, config.top_k)
    chosen = torch.tensor(response_ids, device=stats.log_probs.device)
    log_probs = stats.log_probs.gather(1, chosen[:, None])[:, 0]
    _ensure_finite(stats.entropy, "entropy")
    return RawTrajectory(
        token_ids=list(response_ids),
        log_probs=log_probs.cpu().tolist(),
        entropies=stats.entropy.cpu().tolist(),
        topk_negentropies=stats.topk_negentropy.cpu().tolist(),
        margins=stats.margin.cpu().tolist(),
        finish_reason="scored",
        scoring={
            "tokenisation": tokenisation,
            "chat_template": chat_template,
            "boundary_merged": scored.boundary_merged,
        },
    )
