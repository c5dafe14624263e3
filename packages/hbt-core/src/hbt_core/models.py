"""Model access protocol, a numpy forward pass of tiny byte-level GPT-2-style models, adapters.

The verifier only needs two capabilities of a model: the next-token distribution after a prompt
(logit mode, white or grey box) and generated text for a prompt (text mode, black box). Tiny
byte-level fixture models are stored as ``.npz`` archives of plain arrays (``allow_pickle=False``);
int8/int4 variants keep integer weights with per-row scales and are dequantised on load.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from hbt_core.errors import InvalidInputError, ModelFormatError, check_finite_number, check_int

FloatArray = npt.NDArray[np.float64]
VOCAB = 256
MAX_PROMPT_BYTES = 1 << 16

FIXTURE_NAMES = (
    "base",
    "finetuned",
    "int8",
    "int4",
    "pruned20",
    "distilled",
    "seed1",
    "arch",
)


@runtime_checkable
class LogitModel(Protocol):
    """A model that exposes next-token probability distributions over bytes."""

    name: str

    def next_token_distributions(self, prompt: bytes, positions: int) -> FloatArray:
        """Probabilities of the next byte after each of the last ``positions`` prefixes."""
        ...


@runtime_checkable
class TextModel(Protocol):
    """A model that only returns generated text (black-box API)."""

    name: str

    def generate(self, prompt: bytes, max_new_tokens: int, seed: int) -> bytes:
        """A sampled continuation of ``prompt`` (deterministic given ``seed``)."""
        ...


def _check_prompt(prompt: object) -> bytes:
    if isinstance(prompt, str):
        prompt = prompt.encode("utf-8")
    if not isinstance(prompt, bytes):
        raise InvalidInputError(f"prompt must be bytes or str, got {type(prompt).__name__}")
    if not prompt:
        raise InvalidInputError("prompt must not be empty")
    if len(prompt) > MAX_PROMPT_BYTES:
        raise InvalidInputError(f"prompt has {len(prompt)} bytes, limit {MAX_PROMPT_BYTES}")
    return prompt


@dataclass(frozen=True)
class GPTConfig:
    """Shape of a tiny GPT: byte vocabulary, context, width, depth and heads."""

    n_ctx: int
    d_model: int
    n_layer: int
    n_head: int

    @classmethod
    def from_json(cls, text: str) -> GPTConfig:
        try:
            raw = json.loads(text)
            cfg = cls(
                int(raw["n_ctx"]), int(raw["d_model"]), int(raw["n_layer"]), int(raw["n_head"])
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelFormatError(f"config is malformed: {exc}") from exc
        if min(cfg.n_ctx, cfg.d_model, cfg.n_layer, cfg.n_head) < 1 or cfg.d_model % cfg.n_head:
            raise ModelFormatError(f"config values are inconsistent: {cfg}")
        return cfg


def _layer_norm(x: FloatArray, g: FloatArray, b: FloatArray) -> FloatArray:
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-5) * g + b


def _gelu(x: FloatArray) -> FloatArray:
    return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x**3)))


@lru_cache(maxsize=128)
def _causal_mask(t: int) -> npt.NDArray[np.float32]:
    return np.triu(np.full((t, t), -1e9, dtype=np.float32), k=1)


def softmax(x: FloatArray, axis: int = -1) -> FloatArray:
    z = x - x.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


class TinyGPT:
    """Numpy forward pass of a byte-level GPT-2-style decoder (pre-LN, tied embeddings)."""

    def __init__(self, config: GPTConfig, weights: dict[str, FloatArray], name: str) -> None:
        self.config = config
        self.w = weights
        self.name = name
        self._check_shapes()

    def _check_shapes(self) -> None:
        c = self.config
        d = c.d_model
        expected = {"wte": (VOCAB, d), "wpe": (c.n_ctx, d), "lnf.g": (d,), "lnf.b": (d,)}
        for layer in range(c.n_layer):
            p = f"h{layer}."
            expected |= {
                p + "ln1.g": (d,),
                p + "ln1.b": (d,),
                p + "ln2.g": (d,),
                p + "ln2.b": (d,),
                p + "attn.b": (3 * d,),
                p + "attn.pb": (d,),
                p + "mlp.fb": (4 * d,),
                p + "mlp.pb": (d,),
                p + "attn.w": (c.d_model, 3 * c.d_model),
                p + "attn.proj": (c.d_model, c.d_model),
                p + "mlp.fc": (c.d_model, 4 * c.d_model),
                p + "mlp.proj": (4 * c.d_model, c.d_model),
            }
        for key, shape in expected.items():
            if key not in self.w:
                raise ModelFormatError(f"weight {key!r} missing in model {self.name!r}")
            if self.w[key].shape != shape:
                raise ModelFormatError(
                    f"weight {key!r} has shape {self.w[key].shape}, expected {shape}"
                )
            if not np.all(np.isfinite(self.w[key])):
                raise ModelFormatError(f"weight {key!r} contains NaN or inf")

    @classmethod
    def load(cls, path: str | Path, name: str | None = None) -> TinyGPT:
        """Load a model from a plain-array ``.npz`` (never unpickles)."""
        p = Path(path)
        try:
            with np.load(p, allow_pickle=False) as archive:
                arrays = {k: archive[k] for k in archive.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise ModelFormatError(f"cannot read model file {str(p)!r}: {exc}") from exc
        return cls.from_arrays(arrays, name or p.stem)

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray[Any, Any]], name: str) -> TinyGPT:
        if "config" not in arrays:
            raise ModelFormatError(f"model {name!r} has no 'config' array")
        config = GPTConfig.from_json(bytes(arrays["config"].astype(np.uint8)).decode("utf-8"))
        weights: dict[str, FloatArray] = {}
        for key, arr in arrays.items():
            if key == "config" or key.endswith((".scale", ".bits")):
                continue
            if key.endswith(".q"):
                base = key[:-2]
                weights[base] = _dequantise(arrays, base)
            else:
                weights[key] = arr.astype(np.float32)
        return cls(config, weights, name)

    def identity(self) -> str:
        """BLAKE2b over config and weights: two models share it only if they compute the same."""
        if not hasattr(self, "_identity"):
            h = hashlib.blake2b(digest_size=16)
            h.update(repr(self.config).encode())
            for key in sorted(self.w):
                h.update(key.encode() + b"\0" + np.ascontiguousarray(self.w[key]).tobytes())
            self._identity = h.hexdigest()
        return self._identity

    def logits(self, tokens: npt.NDArray[np.int64]) -> FloatArray:
        """Logits (T, 256) for a token sequence of length T <= n_ctx."""
        c, w = self.config, self.w
        t = tokens.shape[0]
        x = w["wte"][tokens] + w["wpe"][:t]
        hd = c.d_model // c.n_head
        mask = _causal_mask(t)
        for layer in range(c.n_layer):
            p = f"h{layer}."
            h = _layer_norm(x, w[p + "ln1.g"], w[p + "ln1.b"])
            qkv = h @ w[p + "attn.w"] + w[p + "attn.b"]
            q, k, v = np.split(qkv, 3, axis=-1)
            q = q.reshape(t, c.n_head, hd).transpose(1, 0, 2)
            k = k.reshape(t, c.n_head, hd).transpose(1, 0, 2)
            v = v.reshape(t, c.n_head, hd).transpose(1, 0, 2)
            att = softmax(q @ k.transpose(0, 2, 1) / np.sqrt(hd) + mask)
            y = (att @ v).transpose(1, 0, 2).reshape(t, c.d_model)
            x = x + y @ w[p + "attn.proj"] + w[p + "attn.pb"]
            h = _layer_norm(x, w[p + "ln2.g"], w[p + "ln2.b"])
            h = _gelu(h @ w[p + "mlp.fc"] + w[p + "mlp.fb"])
            x = x + h @ w[p + "mlp.proj"] + w[p + "mlp.pb"]
        x = _layer_norm(x, w["lnf.g"], w["lnf.b"])
        return (x @ w["wte"].T).astype(np.float64)

    def next_token_distributions(self, prompt: bytes, positions: int) -> FloatArray:
        data = _check_prompt(prompt)[-self.config.n_ctx :]
        n = check_int("positions", positions, low=1, high=self.config.n_ctx)
        tokens = np.frombuffer(data, dtype=np.uint8).astype(np.int64)
        probs = softmax(self.logits(tokens))
        return probs[-min(n, probs.shape[0]) :]

    def generate(
        self, prompt: bytes, max_new_tokens: int, seed: int, temperature: float = 1.0
    ) -> bytes:
        data = bytearray(_check_prompt(prompt))
        n = check_int("max_new_tokens", max_new_tokens, low=0, high=4096)
        temp = check_finite_number("temperature", temperature, low=1e-3, high=100.0)
        rng = np.random.default_rng(check_int("seed", seed, low=0))
        for _ in range(n):
            tokens = np.frombuffer(bytes(data[-self.config.n_ctx :]), dtype=np.uint8).astype(
                np.int64
            )
            p = softmax(self.logits(tokens)[-1] / temp)
            data.append(int(rng.choice(VOCAB, p=p)))
        return bytes(data[len(data) - n :]) if n else b""


def _dequantise(arrays: dict[str, np.ndarray[Any, Any]], base: str) -> FloatArray:
    q = arrays[base + ".q"]
    scale = arrays.get(base + ".scale")
    bits = int(arrays[base + ".bits"][0]) if base + ".bits" in arrays else 8
    if scale is None:
        raise ModelFormatError(f"quantised weight {base!r} has no scale")
    if bits == 4:
        lo = (q & 0x0F).astype(np.int16)
        hi = ((q >> 4) & 0x0F).astype(np.int16)
        vals = np.stack([lo, hi], axis=-1).reshape(q.shape[0], -1)
        vals = np.where(vals > 7, vals - 16, vals)
    elif bits == 8:
        vals = q.astype(np.int16)
    else:
        raise ModelFormatError(f"weight {base!r} has unsupported bit width {bits}")
    return (vals.astype(np.float32) * scale.astype(np.float32)[:, None]).astype(np.float32)


class SystemPromptWrapper:
    """The base model behind a fixed system prompt prepended to every request."""

    def __init__(self, inner: TinyGPT, system_prompt: bytes, name: str = "sysprompt") -> None:
        self.inner = inner
        self.system_prompt = system_prompt
        self.name = name

    def identity(self) -> str:
        return f"{self.inner.identity()}+{hashlib.blake2b(self.system_prompt).hexdigest()[:16]}"

    def next_token_distributions(self, prompt: bytes, positions: int) -> FloatArray:
        return self.inner.next_token_distributions(
            self.system_prompt + _check_prompt(prompt), positions
        )

    def generate(self, prompt: bytes, max_new_tokens: int, seed: int) -> bytes:
        return self.inner.generate(self.system_prompt + _check_prompt(prompt), max_new_tokens, seed)


class CallableTextModel:
    """Adapter for a black-box text API: any ``fn(prompt, max_new_tokens, seed) -> bytes|str``."""

    def __init__(self, fn: Callable[[bytes, int, int], bytes | str], name: str = "api") -> None:
        if not callable(fn):
            raise InvalidInputError(f"fn must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.name = name

    def generate(self, prompt: bytes, max_new_tokens: int, seed: int) -> bytes:
        out = self.fn(_check_prompt(prompt), max_new_tokens, seed)
        if isinstance(out, str):
            out = out.encode("utf-8")
        if not isinstance(out, bytes):
            raise InvalidInputError(f"text model returned {type(out).__name__}, expected bytes")
        return out


class TransformersLogitModel:
    """Adapter for a Hugging Face causal LM (``transformers`` extra, imported lazily).

    Distributions are over the model's own vocabulary rather than bytes; the logit encoder
    builds base vectors for any token id, so fingerprints compare models that share a tokenizer.
    """

    def __init__(self, model: Any, tokenizer: Any, name: str = "hf") -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name

    def next_token_distributions(self, prompt: bytes, positions: int) -> FloatArray:
        import torch  # lazy: transformers extra

        ids = self.tokenizer(_check_prompt(prompt).decode("utf-8", "replace"), return_tensors="pt")[
            "input_ids"
        ]
        with torch.no_grad():
            logits = self.model(ids).logits[0, -positions:].double().numpy()
        return softmax(logits)

    def generate(self, prompt: bytes, max_new_tokens: int, seed: int) -> bytes:
        import torch  # lazy: transformers extra

        torch.manual_seed(seed)
        text = _check_prompt(prompt).decode("utf-8", "replace")
        ids = self.tokenizer(text, return_tensors="pt")["input_ids"]
        out = self.model.generate(ids, do_sample=True, max_new_tokens=max_new_tokens)
        return str(self.tokenizer.decode(out[0, ids.shape[1] :])).encode("utf-8")


SYSTEM_PROMPT = b"# You are a careful assistant. Answer in Python.\n"


def model_identity(model: object) -> str:
    """A cache identity: the weight digest when the model offers one, else the object's id."""
    ident = getattr(model, "identity", None)
    if callable(ident):
        return str(ident())
    return f"{type(model).__qualname__}@{id(model):x}"


def fixture_path(name: str) -> Path:
    """Path of a shipped fixture model's ``.npz`` file."""
    if name not in FIXTURE_NAMES:
        raise InvalidInputError(f"unknown fixture {name!r}; known: {', '.join(FIXTURE_NAMES)}")
    ref = resources.files("hbt_core") / "fixtures" / f"{name}.npz"
    return Path(str(ref))


def load_fixture(name: str) -> TinyGPT | SystemPromptWrapper:
    """One of the shipped fixture models; ``"sysprompt"`` is the base behind a system prompt."""
    if name == "sysprompt":
        return SystemPromptWrapper(TinyGPT.load(fixture_path("base"), "base"), SYSTEM_PROMPT)
    return TinyGPT.load(fixture_path(name), name)
