"""8-bit loading through BitsAndBytesConfig (bitsandbytes 0.50 runs int8 matmuls on CPU)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from cert.trajectory import HamiltonianMonitor, TrajectoryConfig

CONFIG = TrajectoryConfig(max_new_tokens=6, max_mean_entropy=6.0, max_perplexity=1e6)

pytestmark = [
    pytest.mark.heavy,
    pytest.mark.filterwarnings("ignore:MatMul8bitLt"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # torch.jit use inside bitsandbytes
    pytest.mark.skipif(
        importlib.util.find_spec("bitsandbytes") is None
        or importlib.util.find_spec("accelerate") is None,
        reason="needs the bitsandbytes extra (bitsandbytes + accelerate)",
    ),
]


def test_8bit_model_loads_with_int8_weights_and_tracks_the_fp32_signals(
    tiny_model_dir: Path,
) -> None:
    import torch

    quantized = HamiltonianMonitor(
        str(tiny_model_dir), use_8bit=True, device="cpu", config=CONFIG, preload=True
    )
    layer = quantized._model.transformer.h[0].mlp.c_fc
    assert layer.weight.dtype == torch.int8
    full = HamiltonianMonitor(str(tiny_model_dir), device="cpu", config=CONFIG, preload=True)
    result = full.score("Return the", " number of items in the list.")
    eight_bit = quantized.score("Return the", " number of items in the list.")
    assert eight_bit.token_count == result.token_count
    assert eight_bit.perplexity == pytest.approx(result.perplexity, rel=0.1)
    assert eight_bit.mean_entropy == pytest.approx(result.mean_entropy, abs=0.1)
