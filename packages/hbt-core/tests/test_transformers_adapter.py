"""The transformers adapter on a real (randomly initialised, offline) GPT-2 model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from hbt_core.challenges import generate_probes
from hbt_core.models import LogitModel, TextModel, TransformersLogitModel
from hbt_core.signature import EncoderConfig, build_signature
from hbt_core.verification import per_probe_similarity


class ByteTokenizer:
    """A byte-level tokenizer (ids 0..255), so no vocabulary has to be downloaded."""

    def __call__(self, text: str, return_tensors: str = "pt") -> dict[str, Any]:
        import torch

        return {"input_ids": torch.tensor([list(text.encode("utf-8", "replace"))])}

    def decode(self, ids: Any) -> str:
        return bytes(int(i) % 256 for i in ids).decode("latin-1")


@pytest.mark.slow
@pytest.mark.heavy
def test_transformers_model_is_fingerprinted() -> None:
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    import torch

    def model(seed: int) -> Any:
        torch.manual_seed(seed)
        cfg = transformers.GPT2Config(
            vocab_size=256, n_positions=64, n_embd=32, n_layer=1, n_head=2
        )
        return transformers.GPT2LMHeadModel(cfg).eval()

    a = TransformersLogitModel(model(0), ByteTokenizer(), "a")
    b = TransformersLogitModel(model(1), ByteTokenizer(), "b")
    assert isinstance(a, LogitModel)
    assert isinstance(a, TextModel)
    probs = a.next_token_distributions(b"def f(x):", 3)
    assert probs.shape == (3, 256)
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert len(a.generate(b"def ", 4, seed=0)) > 0
    probes = generate_probes(6, seed=0)
    cfg = EncoderConfig()
    ref = build_signature(a, probes, cfg, 0)
    same = per_probe_similarity(ref, build_signature(a, probes, cfg, 0)).mean()
    other = per_probe_similarity(ref, build_signature(b, probes, cfg, 0)).mean()
    assert same == 1.0
    assert other < 0.9
