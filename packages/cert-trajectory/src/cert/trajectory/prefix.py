"""Key/value caches of shared prompt prefixes, computed once per model and reused.

Why: a service that puts the same long preamble (a system text, an operating overlay) before
every prompt pays that preamble's prefill on every request, and on a CPU prefill is
compute-bound, so batching requests does not make it cheaper. With the preamble's keys and
values cached, a request computes only its own tokens and the ones it generates.

Why token ids and the longest common prefix: under a causal model, the same tokens at the same
positions 0..n-1 have the same keys and values whatever follows them, so reuse is exact (up to
floating-point summation order) and needs no knowledge of where a preamble ends; a seam where
the tokenizer merges across the preamble and the prompt only costs the merged tokens.

Prefixes are learnt from traffic (as vLLM's automatic prefix caching does): when a prompt shares
at least ``min_tokens`` leading tokens with a recent prompt, the keys and values of those tokens
are computed once, by one forward pass, and kept in an LRU bounded by ``max_tokens``. The cache
belongs to one model: a different model object, device or dtype, or weights changed in place,
empty it before it is used again.
"""

from __future__ import annotations

import threading
from array import array
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cert.trajectory.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["PrefixCache", "PrefixPlan"]


_ID_BYTES = 8  # token ids are kept packed as int64: comparing them is then one memcmp


def _packed(ids: Sequence[int]) -> bytes:
    return array("q", ids).tobytes()


@dataclass(frozen=True)
class _Entry:
    ids: bytes  # packed
    layers: list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys, values [1, heads, n, dim]


@dataclass(frozen=True)
class PrefixPlan:
    """How a left-padded batch of ``width`` columns uses the cache.

    ``cached`` is the number of leading columns whose keys and values come from the cache (0:
    none), ``layers`` those columns' keys and values per layer, ``reused`` the real (non-pad)
    tokens they hold.
    """

    cached: int
    layers: list[tuple[torch.Tensor, torch.Tensor]]
    reused: int


def _common_prefix(a: bytes, b: bytes) -> int:
    """Leading tokens two packed id sequences share (binary search over memcmp comparisons;
    on tuples of ints the same search took 0.2 ms per pair, 15 % of a batch of 8's time)."""
    lo, hi = 0, min(len(a), len(b)) // _ID_BYTES
    while lo < hi:
        mid = (lo + hi + 1) // 2
        end = mid * _ID_BYTES
        if a[:end] == b[:end]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _check_count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(
            f"{name} must be an integer >= {minimum}, got {value!r}",
            context={"field": name, "value": repr(value)},
        )
    return value


class PrefixCache:
    """Keys and values of prompt prefixes seen more than once (see the module doc).

    Thread-safe; the forward pass that fills an entry runs in the caller's thread, which must
    own the model (the monitor calls it under its model lock).
    """

    def __init__(self, max_tokens: int = 32_768, *, min_tokens: int = 32, history: int = 64):
        self.max_tokens = _check_count("max_tokens", max_tokens, 1)
        self.min_tokens = _check_count("min_tokens", min_tokens, 1)
        self._history: deque[bytes] = deque(maxlen=_check_count("history", history, 1))
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._tokens = 0
        self._model_state: tuple[Any, ...] | None = None
        self._unsupported = False  # the model's cache is not plain per-layer keys and values
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.reused_tokens = 0
        self.computed_tokens = 0

    def clear(self) -> None:
        """Forget every entry and the history (the model changed, or to free memory)."""
        with self._lock:
            self._clear()

    def info(self) -> dict[str, int]:
        with self._lock:
            return {
                "entries": len(self._entries),
                "tokens": self._tokens,
                "max_tokens": self.max_tokens,
                "hits": self.hits,
                "misses": self.misses,
                "reused_tokens": self.reused_tokens,
                "computed_tokens": self.computed_tokens,
            }

    def plan(self, model: Any, rows: Sequence[Sequence[int]], width: int) -> PrefixPlan:
        """Learn from ``rows`` (token ids, unpadded) and lay out their cached prefixes for a
        batch left-padded to ``width`` columns.

        Every row keeps at least one token to compute (its logits start the generation). All rows
        feed the same number of columns, so the cached width is ``width`` minus the longest
        uncached remainder; a row whose cached prefix is longer recomputes the difference, and
        the pad columns of a short row are zeros, masked out by the attention mask as before.
        """
        import torch

        with self._lock:
            self._bind(model)
            keys = [_packed(row) for row in rows]
            for ids in keys:
                self._learn(model, ids)
            if self._unsupported:
                return PrefixPlan(0, [], 0)
            best = [self._best(ids) for ids in keys]
            lengths = [len(row) for row in rows]
            remainder = max(n - shared for n, (_, shared) in zip(lengths, best, strict=True))
            cached = width - remainder
            if cached < self.min_tokens:
                self.misses += len(keys)
                return PrefixPlan(0, [], 0)
            reused = 0
            layers: list[tuple[torch.Tensor, torch.Tensor]] = []
            template = next(e for e, _ in best if e is not None).layers
            for index, (k0, v0) in enumerate(template):
                shape = (len(keys), k0.shape[1], cached, k0.shape[3])
                batch_keys = torch.zeros(shape, dtype=k0.dtype, device=k0.device)
                batch_values = torch.zeros(
                    (len(keys), v0.shape[1], cached, v0.shape[3]), dtype=v0.dtype, device=v0.device
                )
                for row, (length, (entry, _)) in enumerate(zip(lengths, best, strict=True)):
                    pad = width - length
                    take = cached - pad
                    if entry is None or take <= 0:
                        continue
                    k, v = entry.layers[index]
                    batch_keys[row, :, pad:cached] = k[0, :, :take]
                    batch_values[row, :, pad:cached] = v[0, :, :take]
                    if index == 0:
                        reused += take
                layers.append((batch_keys, batch_values))
            for length, (entry, _) in zip(lengths, best, strict=True):
                if entry is not None and cached - (width - length) > 0:
                    self.hits += 1
                    self._entries.move_to_end(entry.ids)
                else:
                    self.misses += 1
            self.reused_tokens += reused
            return PrefixPlan(cached, layers, reused)

    # ------------------------------------------------------------------ internals (lock held)
    def _clear(self) -> None:
        self._entries.clear()
        self._history.clear()
        self._tokens = 0
        self._unsupported = False

    def _bind(self, model: Any) -> None:
        """Empty the cache when the model it was built for is replaced, moved or changed.

        A parameter's ``_version`` counts its in-place changes (torch's autograd bookkeeping),
        so weights loaded into the same object also invalidate the cache.
        """
        params = list(model.parameters())
        state = (
            id(model),
            str(params[0].device) if params else "",
            str(params[0].dtype) if params else "",
            sum(p._version for p in params),
        )
        if state != self._model_state:
            self._clear()
            self._model_state = state

    def _best(self, ids: bytes) -> tuple[_Entry | None, int]:
        """The entry sharing the most leading tokens with ``ids`` (packed; leaving one to
        compute)."""
        found: _Entry | None = None
        length = 0
        head = ids[: self.min_tokens * _ID_BYTES]
        for entry in self._entries.values():
            if not entry.ids.startswith(head):
                continue
            shared = min(_common_prefix(entry.ids, ids), len(ids) // _ID_BYTES - 1)
            if shared > length:
                found, length = entry, shared
        return (found, length) if length >= self.min_tokens else (None, 0)

    def _learn(self, model: Any, ids: bytes) -> None:
        """Cache the longest prefix ``ids`` (packed) shares with a recent prompt, if it is new
        enough."""
        _, have = self._best(ids)
        head = ids[: self.min_tokens * _ID_BYTES]
        shared = max(
            (_common_prefix(seen, ids) for seen in self._history if seen.startswith(head)),
            default=0,
        )
        shared = min(shared, len(ids) // _ID_BYTES - 1)
        self._history.append(ids)
        if shared - have < self.min_tokens or shared > self.max_tokens:
            return
        prefix = ids[: shared * _ID_BYTES]
        layers = _prefix_layers(model, array("q", prefix).tolist())
        if layers is None:
            self._unsupported = True
            return
        while self._entries and self._tokens + shared > self.max_tokens:
            _, evicted = self._entries.popitem(last=False)
            self._tokens -= len(evicted.ids) // _ID_BYTES
        self._entries[prefix] = _Entry(prefix, layers)
        self._tokens += shared
        self.computed_tokens += shared


def _prefix_layers(model: Any, ids: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
    """Keys and values of ``ids`` at positions 0..n-1, one forward pass, per layer.

    None when the model's cache is anything but full keys and values per layer (sliding-window
    or recurrent state), which this layout cannot continue: such a model is served uncached.
    """
    import torch

    device = next(model.parameters()).device
    with torch.inference_mode():
        output = model(input_ids=torch.tensor([ids], device=device), use_cache=True)
    cache = output.get("cache") if "cache" in output else output.get("past_key_values")
    layers = getattr(cache, "layers", None)
    if layers is None or any(type(layer).__name__ != "DynamicLayer" for layer in layers):
        return None
    return [(layer.keys, layer.values) for layer in layers]
