"""A key/value cache for generate() that writes each step in place instead of concatenating.

Why: transformers' ``DynamicLayer`` appends a step's keys and values with ``torch.cat``, which
copies the whole cache at every step. Behind a 1,100-token prompt that copy was half the CPU time
of a batch of 8 (torch.profiler: ``aten::cat`` 49 %), and it grows with the batch, so batching
paid off far less than the model's own arithmetic would allow. A generation's length is bounded
(prompt width + ``max_new_tokens``), so each layer's buffer is allocated once and a step writes
only its own column; attention reads a view of the filled part. The values are the same tensors
either way; only where they live differs.

Imported on demand: it needs transformers.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer

__all__ = ["PreallocatedLayer", "generation_cache"]


class PreallocatedLayer(DynamicLayer):
    """A ``DynamicLayer`` whose keys and values are views of buffers of ``capacity`` positions.

    Anything that replaces ``keys`` from outside (``crop``, beam reordering, ``reset``) is noticed
    at the next update, which starts a new buffer from what the layer then holds; a generation
    longer than ``capacity`` doubles the buffer. Both stay correct, only slower.
    """

    keys: torch.Tensor
    values: torch.Tensor

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity
        self._key_buffer: torch.Tensor | None = None
        self._value_buffer: torch.Tensor | None = None
        self._view: torch.Tensor | None = None

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        held = self.get_seq_length()
        end = held + key_states.shape[-2]
        keys, values = self._key_buffer, self._value_buffer
        if self.keys is not self._view or keys is None or values is None or end > keys.shape[-2]:
            keys, values = self._reallocate(held, end, key_states, value_states)
        keys[:, :, held:end].copy_(key_states)
        values[:, :, held:end].copy_(value_states)
        self.keys = self._view = keys[:, :, :end]
        self.values = values[:, :, :end]
        return self.keys, self.values

    def _reallocate(
        self, held: int, end: int, key_states: torch.Tensor, value_states: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """New buffers shaped like the incoming states, holding the ``held`` positions so far."""
        current = 0 if self._key_buffer is None else self._key_buffer.shape[-2]
        size = max(self.capacity, end, 2 * current if end > current > 0 else 0)
        keys = key_states.new_empty((*key_states.shape[:2], size, key_states.shape[3]))
        values = value_states.new_empty((*value_states.shape[:2], size, value_states.shape[3]))
        if held:
            keys[:, :, :held].copy_(self.keys)
            values[:, :, :held].copy_(self.values)
        self._key_buffer, self._value_buffer = keys, values
        return keys, values


def generation_cache(
    model: Any, capacity: int, prefix: list[tuple[torch.Tensor, torch.Tensor]]
) -> DynamicCache | None:
    """A cache for one generate() call of at most ``capacity`` positions, holding ``prefix``
    (per layer: keys and values of the batch's leading columns, or empty).

    When the model's cache is anything but one full-attention ``DynamicLayer`` per layer
    (sliding windows, recurrent state), the plain ``DynamicCache`` of ``prefix`` (None when
    there is none: generate() then builds its own).
    """
    try:
        cache = DynamicCache(config=model.config)
    except (AttributeError, KeyError, TypeError, ValueError):  # a layout it does not know
        cache = None
    if cache is None or not cache.layers or any(type(x) is not DynamicLayer for x in cache.layers):
        return DynamicCache(ddp_cache_data=prefix) if prefix else None
    cache.layers = [PreallocatedLayer(capacity) for _ in cache.layers]
    for layer, (keys, values) in zip(cache.layers, prefix, strict=True) if prefix else ():
        layer.update(keys, values)
    return cache
