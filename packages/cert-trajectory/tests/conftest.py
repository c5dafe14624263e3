"""Shared fixtures: a tiny GPT-2 trained here, and a fixed-logit model with exact answers.

No model hub: the tiny model is trained once per session from standard-library docstrings and
loaded back by path through AutoModelForCausalLM / AutoTokenizer, and the fixed-logit model is a
PreTrainedModel subclass whose next-token logits come from a table, driven by the real
generate(), so entropies can be checked against closed forms.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationMixin,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)
from transformers.modeling_outputs import CausalLMOutputWithPast

from cert.trajectory.tiny import TinyModelSpec, build_tiny_model

# Fewer steps than the default: tests need a real trained checkpoint, not a good one.
TEST_SPEC = TinyModelSpec(steps=60)

NEG_INF = -math.inf
FIXED_VOCAB = 16
EOS, A, B, LOOP = 0, 1, 2, 5


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Tiny matrices: a second thread only adds contention on a shared 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", TEST_SPEC)


@pytest.fixture(scope="session")
def tiny(tiny_model_dir: Path) -> tuple[Any, Any]:
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    return model, tokenizer


class FixedLogitConfig(PretrainedConfig):
    model_type = "fixed-logit-test"

    def __init__(self, table: list[list[float]] | None = None, **kwargs: Any) -> None:
        self.table = table or [[0.0] * FIXED_VOCAB for _ in range(FIXED_VOCAB)]
        self.vocab_size = len(self.table)
        # generate() sizes its KV cache from these; the model ignores the cache.
        self.num_hidden_layers = 1
        self.num_attention_heads = 1
        self.hidden_size = self.vocab_size
        super().__init__(**kwargs)


class FixedLogitLM(PreTrainedModel, GenerationMixin):
    """Next-token logits = ``table[last token]``: a Markov chain with known distributions."""

    config_class = FixedLogitConfig
    main_input_name = "input_ids"

    def __init__(self, config: FixedLogitConfig) -> None:
        super().__init__(config)
        self.table = torch.nn.Parameter(torch.tensor(config.table), requires_grad=False)
        self.forward_calls = 0

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs: Any
    ) -> CausalLMOutputWithPast:
        self.forward_calls += 1
        return CausalLMOutputWithPast(logits=self.table[input_ids])

    def prepare_inputs_for_generation(
        self, input_ids: torch.Tensor, **kwargs: Any
    ) -> dict[str, Any]:
        return {"input_ids": input_ids}


def chain_table() -> list[list[float]]:
    """a → {b, c} uniformly (ln 2); b → 8 tokens uniformly (ln 8); d → EOS surely; LOOP → LOOP."""
    table = [[NEG_INF] * FIXED_VOCAB for _ in range(FIXED_VOCAB)]
    table[EOS][EOS] = 0.0
    table[A][B] = table[A][3] = 0.0
    for token in range(4, 12):
        table[B][token] = 0.0
    for row in (3, *range(4, 12)):
        if row != LOOP:
            table[row][EOS] = 0.0
    table[LOOP][LOOP] = 0.0
    table[LOOP][6] = -1.0
    for row in range(12, FIXED_VOCAB):
        table[row] = [float(v % 3) for v in range(FIXED_VOCAB)]
    return table


def fixed_tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab = {"<eos>": EOS, **{f"t{i}": i for i in range(1, FIXED_VOCAB)}}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<eos>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.WordPiece(prefix="##")
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<eos>", pad_token="<eos>", unk_token="<eos>"
    )


@pytest.fixture
def make_fixed() -> Callable[..., tuple[Any, Any]]:
    def make(table: list[list[float]] | None = None, cls: type = FixedLogitLM) -> tuple[Any, Any]:
        config = FixedLogitConfig(
            table=table or chain_table(), eos_token_id=EOS, pad_token_id=EOS, bos_token_id=EOS
        )
        return cls(config).eval(), fixed_tokenizer()

    return make


class FakeCudaOOM(FixedLogitLM):
    """Stands in for a GPU: `.to("cuda")` arms an out-of-memory error, `.to("cpu")` clears it.

    Only the device is faked; the monitor under test runs its real fallback path.
    """

    def __init__(self, config: FixedLogitConfig) -> None:
        super().__init__(config)
        self.on_fake_cuda = False
        self.moves: list[str] = []

    def to(self, *args: Any, **kwargs: Any) -> Any:
        target = str(args[0] if args else kwargs.get("device", ""))
        self.moves.append(target)
        if target.startswith("cuda"):
            self.on_fake_cuda = True
            return self
        self.on_fake_cuda = False
        return super().to(*args, **kwargs)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs: Any
    ) -> CausalLMOutputWithPast:
        if self.on_fake_cuda:
            raise torch.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 20.00 GiB (injected)"
            )
        return super().forward(input_ids, **kwargs)


@pytest.fixture
def fake_cuda_cls() -> type:
    return FakeCudaOOM


@pytest.fixture
def plain_teacher_forced() -> Callable[[Any, list[int], int], tuple[list[float], list[float]]]:
    """Independent reference: log-softmax of one full forward pass, in plain torch."""

    def compute(model: Any, ids: list[int], prompt_len: int) -> tuple[list[float], list[float]]:
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0].double()
        log_probs = torch.log_softmax(logits, dim=-1)
        chosen = [log_probs[t - 1, ids[t]].item() for t in range(prompt_len, len(ids))]
        entropy = [
            -(log_probs[t - 1].exp() * log_probs[t - 1]).sum().item()
            for t in range(prompt_len, len(ids))
        ]
        return chosen, entropy

    return compute
