"""Shared setup of the benchmarks: randomly initialised GPT-2 models of chosen sizes.

Random weights are enough for timing and memory (the work per step does not depend on what the
weights are); the tokenizer is a word-level vocabulary of synthetic words of the same size, so
prompts map to real token ids without a hub download.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

SIZES = {
    # name: (n_layer, n_embd, n_head, vocab)
    "tiny 2x64, vocab 512": (2, 64, 2, 512),
    "small 4x256, vocab 8192": (4, 256, 4, 8192),
    "gpt2-vocab 6x384, vocab 50257": (6, 384, 6, 50257),
}


def build(n_layer: int, n_embd: int, n_head: int, vocab: int, seed: int = 0) -> tuple[Any, Any]:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=vocab, n_positions=1024, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
        bos_token_id=0, eos_token_id=0, pad_token_id=0,
    )  # fmt: skip
    model = GPT2LMHeadModel(config).eval()
    words = {"<eos>": 0, **{f"w{i}": i for i in range(1, vocab)}}
    backend = Tokenizer(models.WordLevel(vocab=words, unk_token="<eos>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<eos>", pad_token="<eos>", unk_token="<eos>"
    )
    return model, tokenizer


def prompt(length: int, offset: int = 1) -> str:
    return " ".join(f"w{(offset + 7 * i) % 500 + 1}" for i in range(length))


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)
