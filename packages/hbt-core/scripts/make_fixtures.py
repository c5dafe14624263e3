"""Train the family of tiny byte-level GPT fixtures with torch and save them as plain ``.npz``.

Run: ``python packages/hbt-core/scripts/make_fixtures.py`` (needs the ``fixtures`` extra, torch).
Ground-truth variants of the base model: fine-tuned on other text, int8 and int4 quantised,
20% magnitude-pruned, a distilled smaller student, a different seed and a different architecture.
(The system-prompt variant is the base model behind a wrapper, built at runtime.)
Training text is the Python standard library's own source, so nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import math
import sysconfig
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional

OUT = Path(__file__).resolve().parents[1] / "src" / "hbt_core" / "fixtures"
BASE_FILES = [
    "textwrap.py",
    "string.py",
    "bisect.py",
    "heapq.py",
    "fnmatch.py",
    "glob.py",
    "shlex.py",
    "calendar.py",
    "functools.py",
    "contextlib.py",
    "abc.py",
    "copy.py",
]
FINETUNE_FILES = [
    "json/encoder.py",
    "json/decoder.py",
    "json/__init__.py",
    "csv.py",
    "http/cookies.py",
    "base64.py",
]


class Block(nn.Module):
    def __init__(self, d: int, n_head: int) -> None:
        super().__init__()
        self.n_head = n_head
        self.ln1 = nn.LayerNorm(d)
        self.attn = nn.Linear(d, 3 * d)
        self.attn_proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc = nn.Linear(d, 4 * d)
        self.proj = nn.Linear(4 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.attn(self.ln1(x)).split(d, dim=2)
        shape = (b, t, self.n_head, d // self.n_head)
        q, k, v = (z.view(shape).transpose(1, 2) for z in (q, k, v))
        y = functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn_proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.proj(functional.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, n_ctx: int, d: int, n_layer: int, n_head: int) -> None:
        super().__init__()
        self.cfg = {"n_ctx": n_ctx, "d_model": d, "n_layer": n_layer, "n_head": n_head}
        self.wte = nn.Embedding(256, d)
        self.wpe = nn.Embedding(n_ctx, d)
        self.blocks = nn.ModuleList(Block(d, n_head) for _ in range(n_layer))
        self.lnf = nn.LayerNorm(d)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.lnf(x) @ self.wte.weight.T


def corpus(files: list[str]) -> np.ndarray:
    root = Path(sysconfig.get_paths()["stdlib"])
    text = b"\n".join((root / f).read_bytes() for f in files if (root / f).is_file())
    return np.frombuffer(text, dtype=np.uint8).astype(np.int64)


def batches(data: np.ndarray, n_ctx: int, batch: int, rng: np.random.Generator):
    while True:
        starts = rng.integers(0, len(data) - n_ctx - 1, size=batch)
        x = np.stack([data[s : s + n_ctx] for s in starts])
        y = np.stack([data[s + 1 : s + n_ctx + 1] for s in starts])
        yield torch.from_numpy(x), torch.from_numpy(y)


def train(
    model: GPT, data: np.ndarray, steps: int, lr: float, seed: int, teacher: GPT | None = None
) -> float:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    gen = batches(data, model.cfg["n_ctx"], 16, rng)
    loss = torch.tensor(0.0)
    for step in range(steps):
        x, y = next(gen)
        for group in opt.param_groups:
            group["lr"] = (
                lr * min(1.0, (step + 1) / 50) * 0.5 * (1 + math.cos(math.pi * step / steps))
            )
        logits = model(x)
        if teacher is None:
            loss = functional.cross_entropy(logits.reshape(-1, 256), y.reshape(-1))
        else:
            with torch.no_grad():
                target = functional.softmax(teacher(x), dim=-1)
            loss = (
                functional.kl_div(functional.log_softmax(logits, -1), target, reduction="batchmean")
                / x.shape[1]
            )
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss.detach())


def to_arrays(model: GPT) -> dict[str, np.ndarray]:
    """Rename torch parameters to the numpy forward pass's names; Linear weights as (in, out)."""
    a: dict[str, np.ndarray] = {
        "wte": model.wte.weight.detach().numpy(),
        "wpe": model.wpe.weight.detach().numpy(),
        "lnf.g": model.lnf.weight.detach().numpy(),
        "lnf.b": model.lnf.bias.detach().numpy(),
    }
    for i, blk in enumerate(model.blocks):
        p = f"h{i}."
        pairs = {
            "ln1.g": blk.ln1.weight,
            "ln1.b": blk.ln1.bias,
            "ln2.g": blk.ln2.weight,
            "ln2.b": blk.ln2.bias,
            "attn.w": blk.attn.weight.T,
            "attn.b": blk.attn.bias,
            "attn.proj": blk.attn_proj.weight.T,
            "attn.pb": blk.attn_proj.bias,
            "mlp.fc": blk.fc.weight.T,
            "mlp.fb": blk.fc.bias,
            "mlp.proj": blk.proj.weight.T,
            "mlp.pb": blk.proj.bias,
        }
        a |= {p + k: v.detach().numpy().copy() for k, v in pairs.items()}
    out = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in a.items()}
    out["config"] = np.frombuffer(json.dumps(model.cfg).encode(), dtype=np.uint8).copy()
    return out


MATRICES = ("wte", "attn.w", "attn.proj", "mlp.fc", "mlp.proj")


def is_matrix(key: str) -> bool:
    return key.endswith(MATRICES)


def quantise(arrays: dict[str, np.ndarray], bits: int) -> dict[str, np.ndarray]:
    """Symmetric per-row quantisation of every weight matrix; int4 packs two values per byte."""
    qmax = 2 ** (bits - 1) - 1
    out: dict[str, np.ndarray] = {}
    for key, arr in arrays.items():
        if key == "config" or not is_matrix(key):
            out[key] = arr
            continue
        scale = np.maximum(np.abs(arr).max(axis=1), 1e-8) / qmax
        q = np.clip(np.round(arr / scale[:, None]), -qmax, qmax).astype(np.int8)
        if bits == 4:
            nib = (q.astype(np.int16) & 0x0F).astype(np.uint8)
            q = (nib[:, 0::2] | (nib[:, 1::2] << 4)).astype(np.uint8)
        out[key + ".q"] = q
        out[key + ".scale"] = scale.astype(np.float32)
        out[key + ".bits"] = np.array([bits], dtype=np.int8)
    return out


def prune(arrays: dict[str, np.ndarray], fraction: float) -> dict[str, np.ndarray]:
    """Global magnitude pruning of the transformer-block weight matrices (no retraining)."""
    keys = [k for k in arrays if is_matrix(k) and k != "wte"]
    cut = np.quantile(np.concatenate([np.abs(arrays[k]).ravel() for k in keys]), fraction)
    return {
        k: (np.where(np.abs(v) < cut, 0, v).astype(v.dtype) if k in keys else v)
        for k, v in arrays.items()
    }


def save(name: str, arrays: dict[str, np.ndarray]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT / f"{name}.npz", **arrays)
    print(f"{name}: {(OUT / f'{name}.npz').stat().st_size / 1024:.0f} KiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=500)
    args = parser.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    data, ft_data = corpus(BASE_FILES), corpus(FINETUNE_FILES)
    torch.manual_seed(0)
    base = GPT(64, 64, 2, 4)
    print("base loss", train(base, data, args.steps, 3e-3, seed=0))
    base_arrays = to_arrays(base)
    save("base", base_arrays)
    save("int8", quantise(base_arrays, 8))
    save("int4", quantise(base_arrays, 4))
    save("pruned20", prune(base_arrays, 0.2))
    finetuned = GPT(64, 64, 2, 4)
    finetuned.load_state_dict(base.state_dict())
    print("finetune loss", train(finetuned, ft_data, args.steps // 6, 1e-3, seed=2))
    save("finetuned", to_arrays(finetuned))
    torch.manual_seed(1)
    seed1 = GPT(64, 64, 2, 4)
    print("seed1 loss", train(seed1, data, args.steps, 3e-3, seed=1))
    save("seed1", to_arrays(seed1))
    torch.manual_seed(3)
    arch = GPT(64, 96, 1, 4)
    print("arch loss", train(arch, data, args.steps, 3e-3, seed=3))
    save("arch", to_arrays(arch))
    torch.manual_seed(4)
    student = GPT(64, 48, 2, 4)
    base.eval()
    print("distil loss", train(student, data, args.steps, 3e-3, seed=4, teacher=base))
    save("distilled", to_arrays(student))
    print(f"done in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
