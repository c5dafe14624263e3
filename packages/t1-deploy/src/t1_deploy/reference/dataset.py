"""The code-search benchmark, built at run time from the installed Python standard library.

Query = first line of a function's docstring; relevant document = that function's source lines with
the docstring's lines removed. Files are read in sorted order and pairs
are sorted by (module, qualified name), so the same interpreter and seed give the same data set.
"""

from __future__ import annotations

import ast
import copy
import functools
import hashlib
import os
import platform
import re
import sysconfig
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from t1_deploy._validate import check_int
from t1_deploy.errors import DatasetError

SPLITS = ("train", "validation", "test", "holdback")
_SKIP_DIRS = {"test", "tests", "idlelib", "lib2to3", "site-packages", "__pycache__", "turtledemo"}
_TOKEN = re.compile(r"[A-Za-z][a-z]+|[A-Z]+(?![a-z])|\d+")
_CODE_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*[_.(][A-Za-z0-9_.()]*|[a-z]+[A-Z][A-Za-z]*")
_WORD = re.compile(r"\S+")


def tokenize(text: str) -> list[str]:
    """Lower-case word pieces; identifiers split on snake_case and camelCase boundaries."""
    return [t.lower() for t in _TOKEN.findall(text)]


def nl_confidence(query: str) -> float:
    """Share of whitespace-separated query words that read as prose rather than code.

    A word counts as code when it looks like an identifier (snake_case, dotted, a call, camelCase).
    1.0 = plain English, 0.0 = only identifiers.
    """
    words = _WORD.findall(query)
    if not words:
        return 0.0
    code = sum(1 for w in words if _CODE_TOKEN.fullmatch(w.strip(".,:;`'\"")))
    return 1.0 - code / len(words)


@dataclass(frozen=True)
class CodeSearchPair:
    """One query and its single relevant function."""

    pair_id: int
    module: str
    qualname: str
    query: str
    document: str
    domain: str  # top-level module: the stratification "language"
    query_tokens: int
    nl_confidence: float
    hard_nl: bool  # no query token occurs in the function's name


@dataclass
class CodeSearchDataset:
    """All pairs plus a seeded, disjoint split of their ids."""

    pairs: list[CodeSearchPair]
    splits: dict[str, list[int]]
    seed: int
    python_version: str
    fingerprint: str = field(default="")

    def split(self, name: str) -> list[CodeSearchPair]:
        if name not in self.splits:
            raise DatasetError(f"split must be one of {sorted(self.splits)}, got {name!r}")
        return [self.pairs[i] for i in self.splits[name]]


def _function_pairs(path: Path) -> list[tuple[str, str, str]]:
    try:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return []
    lines = source.splitlines()
    found: list[tuple[str, str, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(child)
                if doc:
                    first = doc.strip().splitlines()[0].strip()
                    found.append((f"{prefix}{child.name}", first, _without_docstring(child, lines)))

    visit(tree, "")
    return found


def _without_docstring(node: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str]) -> str:
    """The function's source lines minus the docstring's lines (comments stay)."""
    doc = node.body[0]
    end = node.end_lineno or node.lineno
    if doc.lineno == node.lineno or doc.end_lineno is None:  # one-line `def f(): "doc"`
        stripped = copy.copy(node)
        stripped.body = node.body[1:] or [ast.Pass()]
        return ast.unparse(stripped)
    kept = lines[node.lineno - 1 : doc.lineno - 1] + lines[doc.end_lineno : end]
    return textwrap.dedent("\n".join(kept))


@functools.lru_cache(maxsize=4)
def _collect(base: Path) -> tuple[tuple[str, str, str, str], ...]:
    """(module, qualname, query, document) of every documented function under `base`, in file
    order; cached per process because parsing the standard library takes seconds."""
    raw: list[tuple[str, str, str, str]] = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(
            d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("test")
        )
        for filename in sorted(filenames):
            if not filename.endswith(".py") or filename.startswith("test"):
                continue
            path = Path(dirpath) / filename
            rel = path.relative_to(base).with_suffix("")
            module = ".".join(p for p in rel.parts if p != "__init__") or "__main__"
            for qualname, query, document in _function_pairs(path):
                raw.append((module, qualname, query, document))
    return tuple(raw)


def _stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def build_dataset(
    *,
    seed: int = 0,
    max_pairs: int = 6000,
    fractions: tuple[float, float, float, float] = (0.3, 0.2, 0.3, 0.2),
    min_query_words: int = 3,
    root: Path | None = None,
) -> CodeSearchDataset:
    """Collect (docstring first line, function source) pairs and split them by `seed`.

    Queries that occur more than once are dropped (ambiguous relevance), so each query has exactly
    one relevant document. `fractions` are train/validation/test/holdback shares.
    """
    seed = check_int("seed", seed, low=0, high=2**32 - 1)
    max_pairs = check_int("max_pairs", max_pairs, low=100, high=200_000)
    if len(fractions) != 4 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise DatasetError(f"fractions must be 4 positive shares summing to 1, got {fractions}")
    base = root if root is not None else _stdlib_root()
    raw = _collect(base)
    counts: dict[str, int] = {}
    for _, _, query, _ in raw:
        counts[query.lower()] = counts.get(query.lower(), 0) + 1
    kept = sorted(
        (r for r in raw if counts[r[2].lower()] == 1 and len(r[2].split()) >= min_query_words),
        key=lambda r: (r[0], r[1]),
    )
    if len(kept) < 100:
        raise DatasetError(f"only {len(kept)} usable pairs under {base}; need at least 100")
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.permutation(len(kept))[: min(max_pairs, len(kept))].tolist())
    pairs = []
    for new_id, idx in enumerate(chosen):
        module, qualname, query, document = kept[idx]
        name_tokens = set(tokenize(qualname.rsplit(".", 1)[-1]))
        query_tokens = tokenize(query)
        pairs.append(
            CodeSearchPair(
                pair_id=new_id,
                module=module,
                qualname=qualname,
                query=query,
                document=document,
                domain=module.split(".")[0],
                query_tokens=len(query_tokens),
                nl_confidence=nl_confidence(query),
                hard_nl=not (set(query_tokens) & name_tokens),
            )
        )
    order = np.random.default_rng(seed + 1).permutation(len(pairs))
    bounds = np.cumsum([0, *[round(f * len(pairs)) for f in fractions[:3]]])
    splits = {
        name: sorted(order[bounds[i] : bounds[i + 1]].tolist()) for i, name in enumerate(SPLITS[:3])
    }
    splits["holdback"] = sorted(order[bounds[3] :].tolist())
    digest = hashlib.sha256()
    for p in pairs:
        digest.update(f"{p.module}\0{p.qualname}\0{p.query}\n".encode())
    return CodeSearchDataset(
        pairs=pairs,
        splits=splits,
        seed=seed,
        python_version=platform.python_version(),
        fingerprint=digest.hexdigest()[:16],
    )
