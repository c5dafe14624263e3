"""A tiny GPT-2-style model and byte-level BPE tokenizer, trained locally in seconds.

Why: tests, the demo and offline pipelines need a real causal LM without a model hub. The
corpus is the English documentation that ships with the Python standard library (module and
function docstrings), so it exists on every machine that runs this package. The result is saved
with ``save_pretrained`` and is loaded back like any checkpoint (``AutoModelForCausalLM`` /
``AutoTokenizer`` by path). It babbles docstring-flavoured English; it is not a useful model.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cert.trajectory.errors import ConfigError, OutputDirectoryError

__all__ = ["TinyModelSpec", "build_tiny_model", "stdlib_corpus"]

_CORPUS_MODULES = (
    "argparse", "collections", "contextlib", "csv", "dataclasses", "datetime", "decimal",
    "difflib", "email.message", "enum", "fractions", "functools", "gzip", "heapq", "http.client",
    "inspect", "itertools", "json", "logging", "math", "operator", "os", "pathlib", "pickle",
    "queue", "random", "re", "shutil", "socket", "sqlite3", "statistics", "string", "subprocess",
    "tarfile", "tempfile", "textwrap", "threading", "time", "typing", "unittest", "urllib.parse",
    "uuid", "warnings", "zipfile",
)  # fmt: skip

EOS_TOKEN = "<|endoftext|>"
_SPEC_FILE = "tiny_model_spec.json"
_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class TinyModelSpec:
    """Everything that determines the trained model; a cached build is reused only if equal."""

    vocab_size: int = 512
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 64
    n_positions: int = 256
    context: int = 32
    batch_size: int = 16
    steps: int = 300
    learning_rate: float = 1e-2
    seed: int = 0
    #: "constant", or "cosine": linear warm-up over the first 5% of steps, then a cosine decay
    #: to a tenth of ``learning_rate``, which lets a short run settle into a lower loss.
    schedule: str = "constant"
    #: GPT-2's dropout (residual, embedding, attention). A model this small underfits its
    #: corpus, so dropout only slows it down; 0.1 is GPT-2's default.
    dropout: float = 0.1


def stdlib_corpus() -> list[str]:
    """Docstrings of a fixed list of standard-library modules and their public members."""
    texts: list[str] = []
    seen: set[str] = set()
    with warnings.catch_warnings():  # some attributes are deprecated aliases (typing.io)
        warnings.simplefilter("ignore")
        for name in _CORPUS_MODULES:
            try:
                module = importlib.import_module(name)
            except ImportError:  # a stripped-down Python may lack a module; use the rest
                continue
            public = sorted(a for a in vars(module) if not a.startswith("_"))
            for obj in [module, *(getattr(module, attr) for attr in public)]:
                if isinstance(obj, (str, int, float, bytes)) or _process_dependent(obj, module):
                    continue
                doc = inspect.getdoc(obj)
                text = " ".join(doc.split()) if doc else ""  # one line: no blank-line runs
                if len(text) > 40 and text not in seen:
                    seen.add(text)
                    texts.append(text)
    return texts


def _process_dependent(obj: object, module: object) -> bool:
    """True for attributes that depend on what else the process imported: submodules (an
    attribute only once something imports them) and objects a third-party library put there
    (torch replaces ``inspect.getfile``). Either would make the corpus, and so the model,
    differ between processes with the same spec."""
    if inspect.ismodule(obj):
        return obj is not module
    owner = getattr(obj, "__module__", None)
    return isinstance(owner, str) and owner.split(".")[0] not in sys.stdlib_module_names


def _train_tokenizer(corpus: list[str], spec: TinyModelSpec) -> object:
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        corpus,
        vocab_size=spec.vocab_size,
        min_frequency=2,
        special_tokens=[EOS_TOKEN],
        show_progress=False,  # a library does not draw progress bars on the user's terminal
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer,
        eos_token=EOS_TOKEN,
        bos_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
        unk_token=EOS_TOKEN,
        model_max_length=spec.n_positions,
    )


@contextmanager
def _reproducible_torch() -> Iterator[None]:
    """Training that gives the same weights bit for bit in every process: the global RNG (which
    dropout draws from) forked and seeded by the caller, deterministic kernels and one thread
    (a reduction split over another number of threads sums in another order). The process's
    settings are restored afterwards: a library does not change them for its caller."""
    import torch

    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.set_num_threads(1)  # tiny matrices: extra threads only add contention anyway
        torch.use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(deterministic)
            torch.set_num_threads(threads)


def _train_model(
    token_stream: list[int], vocab_size: int, eos_id: int, spec: TinyModelSpec
) -> object:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    with _reproducible_torch():
        torch.manual_seed(spec.seed)
        config = GPT2Config(
            vocab_size=vocab_size,
            n_positions=spec.n_positions,
            n_embd=spec.n_embd,
            n_layer=spec.n_layer,
            n_head=spec.n_head,
            resid_pdrop=spec.dropout,
            embd_pdrop=spec.dropout,
            attn_pdrop=spec.dropout,
            bos_token_id=eos_id,
            eos_token_id=eos_id,
            pad_token_id=eos_id,
        )
        model = GPT2LMHeadModel(config)
        model.train()
        _fit(model, torch.tensor(token_stream, dtype=torch.long), spec)
    model.eval()
    return model


def _lr_factor(step: int, spec: TinyModelSpec) -> float:
    """The learning rate of ``step`` as a fraction of ``spec.learning_rate``."""
    if spec.schedule == "constant":
        return 1.0
    warmup = max(1, spec.steps // 20)
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, spec.steps - warmup)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))


def _fit(model: Any, data: Any, spec: TinyModelSpec) -> None:
    import torch

    generator = torch.Generator().manual_seed(spec.seed)  # the batches' order
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.learning_rate)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _lr_factor(step, spec))
    for _ in range(spec.steps):
        starts = torch.randint(0, len(data) - spec.context, (spec.batch_size,), generator=generator)
        batch = torch.stack([data[s : s + spec.context] for s in starts.tolist()])
        loss = model(input_ids=batch, labels=batch).loss  # the model shifts labels itself
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()


def build_tiny_model(out_dir: str | os.PathLike[str], spec: TinyModelSpec | None = None) -> Path:
    """Train (or reuse, when ``out_dir`` holds a build of the same spec) the tiny model.

    Returns ``out_dir``, which then loads with ``AutoModelForCausalLM.from_pretrained``.
    Writes into a temporary sibling directory and renames it, so a crash never leaves a
    half-written checkpoint that a later call would reuse. An existing ``out_dir`` is replaced
    only if it is empty or holds an earlier build (its spec marker); anything else raises
    :class:`OutputDirectoryError` and is left untouched.
    """
    spec = spec or TinyModelSpec()
    if spec.steps < 1 or spec.vocab_size < 260:
        raise ConfigError(
            "TinyModelSpec needs steps >= 1 and vocab_size >= 260 (256 bytes + merges)",
            context={"field": "spec", "value": repr(spec)},
        )
    if spec.schedule not in _SCHEDULES:
        raise ConfigError(
            f"TinyModelSpec.schedule must be one of {', '.join(_SCHEDULES)}",
            context={"field": "schedule", "value": repr(spec.schedule)},
        )
    target = Path(out_dir)
    if _built_spec(target) == asdict(spec):
        return target
    _check_replaceable(target)  # before minutes of training, and again before the swap

    # Importing torch replaces inspect.getfile (see _process_dependent): import it before the
    # corpus is read, so the corpus is the same whether or not the caller had imported it.
    import torch  # noqa: F401

    corpus = stdlib_corpus()
    tokenizer = _train_tokenizer(corpus, spec)
    eos_id = tokenizer.eos_token_id  # type: ignore[attr-defined]
    stream: list[int] = []
    # the Rust tokenizer directly: the wrapper warns about every text longer than n_positions
    for encoding in tokenizer.backend_tokenizer.encode_batch(corpus):  # type: ignore[attr-defined]
        stream.extend(encoding.ids)
        stream.append(eos_id)
    model = _train_model(stream, len(tokenizer), eos_id, spec)  # type: ignore[arg-type]

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(staging)  # type: ignore[attr-defined]
        tokenizer.save_pretrained(staging)  # type: ignore[attr-defined]
        (staging / _SPEC_FILE).write_text(json.dumps(asdict(spec), sort_keys=True))
        _check_replaceable(target)
    except BaseException:  # a refusal or a failed save leaves no staging directory behind
        _remove_tree(staging)
        raise
    if target.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
        os.replace(target, retired / "model")
        os.replace(staging, target)
        _remove_tree(retired)
    else:
        os.replace(staging, target)
    return target


def _built_spec(target: Path) -> dict[str, Any] | None:
    """The spec recorded in ``target`` by an earlier build, or None if there is no readable one.

    A build by an earlier version records fewer fields (the spec has grown): it is still ours
    to replace, and it never equals a current spec, so it is never reused."""
    try:
        recorded = json.loads((target / _SPEC_FILE).read_text())
    except (OSError, ValueError):
        return None
    fields = set(asdict(TinyModelSpec()))
    if isinstance(recorded, dict) and recorded and set(recorded) <= fields:
        return recorded
    return None


def _check_replaceable(target: Path) -> None:
    """Refuse to replace anything but a missing path, an empty directory or an earlier build.

    Why: the build swaps ``target`` out and deletes it; a user's directory that happens to
    share the name (a typo, ``.``, a home directory) must never be the thing deleted.
    """
    if not target.exists() and not target.is_symlink():
        return
    if target.is_symlink() or not target.is_dir():
        raise OutputDirectoryError(
            "build_tiny_model out_dir exists and is a file or a symlink; refusing to replace it",
            context={"field": "out_dir", "value": str(target)},
        )
    if _built_spec(target) is not None or not any(target.iterdir()):
        return
    raise OutputDirectoryError(
        f"build_tiny_model out_dir is not empty and holds no {_SPEC_FILE} from an earlier "
        "build; refusing to replace a directory this function did not create",
        context={"field": "out_dir", "value": str(target)},
    )


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
