"""Challenge sets: probes over domains and perturbation operators, all deterministic from seeds.

A probe is a short prompt from one domain. Each verification run draws fresh perturbations of
every probe (from the run's seed), so a model cannot cache answers, and the spread of its
responses across perturbations is a measured behavioural variance.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from hbt_core.errors import InvalidInputError, check_int

_DOMAINS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "definitions": (
        ("def ", "    def ", "class ", "async def "),
        ("parse", "wrap", "join", "format", "split", "update", "insort", "fill"),
    ),
    "control": (
        ("    if ", "        for ", "    while ", "    return ", "        elif "),
        ("not ", "self.", "len(", "isinstance(", "key ", "i "),
    ),
    "docstrings": (
        ('    """', "    # ", '"""Return ', "    Args:\n        "),
        ("the ", "a new ", "width ", "items ", "string ", "each "),
    ),
    "imports": (
        ("import ", "from ", "__all__ = [", "    raise "),
        ("os", "re", "sys", "ValueError(", "TypeError(", "collections"),
    ),
    "expressions": (
        ("x = ", "    result = ", "    return ", "n += "),
        ("[]", "{}", "0", "''", "None", "(1, 2)", "lines[0]"),
    ),
}
DOMAINS = tuple(_DOMAINS)


@dataclass(frozen=True)
class Probe:
    """One challenge prompt with a stable identifier and its domain."""

    probe_id: str
    domain: str
    prompt: bytes


def generate_probes(n: int, seed: int = 0, domains: Sequence[str] = DOMAINS) -> list[Probe]:
    """``n`` distinct probes spread round-robin over ``domains`` (deterministic in ``seed``)."""
    check_int("n", n, low=1, high=100_000)
    check_int("seed", seed, low=0)
    if not domains or any(d not in _DOMAINS for d in domains):
        raise InvalidInputError(f"domains must be a non-empty subset of {DOMAINS}, got {domains!r}")
    rng = np.random.default_rng([seed, 0x9B7])
    probes: list[Probe] = []
    seen: set[bytes] = set()
    attempts = 0
    while len(probes) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise InvalidInputError(f"cannot generate {n} distinct probes from these domains")
        domain = domains[len(probes) % len(domains)]
        heads, tails = _DOMAINS[domain]
        text = str(rng.choice(heads)) + str(rng.choice(tails))
        if rng.random() < 0.5:
            text += str(rng.choice(tails))
        prompt = text.encode()
        if prompt in seen:
            continue
        seen.add(prompt)
        pid = hashlib.blake2b(prompt, digest_size=8).hexdigest()
        probes.append(Probe(f"{domain}:{pid}", domain, prompt))
    return probes


def _insert_space(p: bytes, rng: np.random.Generator) -> bytes:
    i = int(rng.integers(0, len(p) + 1))
    return p[:i] + b" " + p[i:]


def _swap_case(p: bytes, rng: np.random.Generator) -> bytes:
    letters = [i for i, c in enumerate(p) if chr(c).isalpha()]
    if not letters:
        return p + b" "
    i = int(rng.choice(letters))
    return p[:i] + bytes([p[i] ^ 0x20]) + p[i + 1 :]


def _prefix_line(p: bytes, rng: np.random.Generator) -> bytes:
    lines = (b"\n", b"# note\n", b"\n\n", b"# -*- coding: utf-8 -*-\n")
    return lines[int(rng.integers(0, len(lines)))] + p


def _duplicate_char(p: bytes, rng: np.random.Generator) -> bytes:
    i = int(rng.integers(0, len(p)))
    return p[: i + 1] + p[i : i + 1] + p[i + 1 :]


def _drop_char(p: bytes, rng: np.random.Generator) -> bytes:
    if len(p) < 3:
        return p + b" "
    i = int(rng.integers(0, len(p) - 1))
    return p[:i] + p[i + 1 :]


PERTURBATIONS: dict[str, Callable[[bytes, np.random.Generator], bytes]] = {
    "insert_space": _insert_space,
    "swap_case": _swap_case,
    "prefix_line": _prefix_line,
    "duplicate_char": _duplicate_char,
    "drop_char": _drop_char,
}


def perturb(probe: Probe, n_samples: int, run_seed: int) -> list[bytes]:
    """``n_samples`` prompts for ``probe`` in one run: the original, then fresh perturbations."""
    check_int("n_samples", n_samples, low=1, high=1024)
    check_int("run_seed", run_seed, low=0)
    digest = int.from_bytes(
        hashlib.blake2b(probe.probe_id.encode(), digest_size=8).digest(), "little"
    )
    rng = np.random.default_rng([run_seed, digest])
    names = sorted(PERTURBATIONS)
    prompts = [probe.prompt]
    for _ in range(n_samples - 1):
        op = PERTURBATIONS[names[int(rng.integers(0, len(names)))]]
        prompts.append(op(probe.prompt, rng))
    return prompts
