"""The preallocated key/value cache gives exactly what transformers' own DynamicCache gives."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from transformers.cache_utils import DynamicCache, DynamicLayer

from cert.trajectory.kvcache import PreallocatedLayer, generation_cache


def _generate(model: Any, tokenizer: Any, cache: Any) -> Any:
    encoded = tokenizer(["Read the file line by line", "The"], return_tensors="pt", padding=True)
    with torch.no_grad():
        return model.generate(
            input_ids=encoded["input_ids"],
            attention_mask=encoded["attention_mask"],
            cache=cache,
            max_new_tokens=12,
            do_sample=False,
            output_scores=True,
            return_dict_in_generate=True,
            pad_token_id=tokenizer.pad_token_id,
        )


@pytest.mark.parametrize("capacity", [64, 3], ids=["fits", "grows past its capacity"])
def test_generation_with_the_preallocated_cache_equals_the_dynamic_cache(
    tiny: tuple[Any, Any], capacity: int
) -> None:
    model, tokenizer = tiny
    tokenizer.padding_side = "left"
    cache = generation_cache(model, capacity, [])
    assert cache is not None
    assert all(isinstance(x, PreallocatedLayer) for x in cache.layers)
    ours = _generate(model, tokenizer, cache)
    theirs = _generate(model, tokenizer, DynamicCache(config=model.config))
    assert torch.equal(ours.sequences, theirs.sequences)
    for mine, reference in zip(ours.scores, theirs.scores, strict=True):
        torch.testing.assert_close(mine, reference, rtol=1e-6, atol=1e-6)


def test_a_layout_it_does_not_know_gets_the_plain_dynamic_cache() -> None:
    model = type("Model", (), {"config": None})()  # no layers to inspect: nothing to swap
    prefix = [(torch.ones(1, 2, 3, 4), torch.ones(1, 2, 3, 4))]
    plain = generation_cache(model, 10, prefix)
    assert plain is not None
    assert type(plain.layers[0]) is DynamicLayer
    assert generation_cache(model, 10, []) is None


def test_keys_replaced_from_outside_are_adopted_at_the_next_update() -> None:
    """crop() (assisted decoding) and reset() assign ``keys``; the next step starts from them."""
    torch.manual_seed(0)
    steps = [(torch.randn(2, 4, n, 8), torch.randn(2, 4, n, 8)) for n in (5, 1, 1, 1)]
    ours, theirs = PreallocatedLayer(capacity=7), DynamicLayer()
    for layer in (ours, theirs):
        for keys, values in steps[:3]:
            layer.update(keys, values)
        layer.crop(-3)
        got = layer.update(*steps[3])
        assert got[0].shape[-2] == 5
    torch.testing.assert_close(ours.keys, theirs.keys, rtol=0, atol=0)
    torch.testing.assert_close(ours.values, theirs.values, rtol=0, atol=0)
