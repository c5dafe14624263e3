"""Fingerprinting on the shipped tiny-GPT family: discrimination per variant (logit mode, AUROC,
sequential queries), text mode vs an MMD two-sample test at equal samples, signature
construction time, incremental-update time and edge package sizes. Medians; all measured here."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hbt_core.challenges import Probe, generate_probes
from hbt_core.edge import LEVELS, export_edge, load_edge
from hbt_core.hdc import base_vector
from hbt_core.incremental import AdaptiveWeighting, ExponentialDecay, Reservoir, SlidingWindow
from hbt_core.models import load_fixture
from hbt_core.selection import ProbeStats, order_by_information, ordered_sprt
from hbt_core.signature import EncoderConfig, build_signature, generations
from hbt_core.verification import Calibration, auroc, per_probe_similarity, verify

VARIANTS = ("int8", "pruned20", "sysprompt", "finetuned", "distilled", "int4", "seed1", "arch")


def _features(texts: Sequence[bytes], dim: int = 4096) -> np.ndarray:
    """Hashed byte-trigram counts, L2-normalised (the kernel features of the MMD test)."""
    out = np.zeros((len(texts), dim))
    for i, t in enumerate(texts):
        a = np.frombuffer(t, dtype=np.uint8).astype(np.int64)
        if len(a) >= 3:
            idx = (a[:-2] * 65_599 + a[1:-1] * 257 + a[2:]) % dim
            np.add.at(out[i], idx, 1.0)
        out[i] /= max(np.linalg.norm(out[i]), 1e-12)
    return out


def mmd_test(x: np.ndarray, y: np.ndarray, perms: int = 200, seed: int = 0) -> float:
    """Permutation p-value of the unbiased MMD^2 with a Gaussian kernel on the features."""
    z = np.concatenate([x, y])
    sq = np.sum(z**2, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * z @ z.T, 0)
    k = np.exp(-d2 / np.median(d2[d2 > 0]))
    n = len(x)

    def stat(idx: np.ndarray) -> float:
        a, b = idx[:n], idx[n:]
        kxx, kyy, kxy = k[np.ix_(a, a)], k[np.ix_(b, b)], k[np.ix_(a, b)]
        m = len(b)
        return float(
            (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
            + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
            - 2 * kxy.mean()
        )

    rng = np.random.default_rng(seed)
    observed = stat(np.arange(len(z)))
    null = [stat(rng.permutation(len(z))) for _ in range(perms)]
    return (1 + sum(s >= observed for s in null)) / (1 + perms)


def discrimination(probes: list[Probe], runs: int, variants: Sequence[str]) -> list[str]:
    cfg = EncoderConfig()
    base = load_fixture("base")
    ref = build_signature(base, probes, cfg, 0)
    cal = Calibration.from_null(ref, [build_signature(base, probes, cfg, s) for s in (1, 2, 3)])
    seeds = range(10, 10 + runs)
    same = [per_probe_similarity(ref, build_signature(base, probes, cfg, s)).mean() for s in seeds]
    same_rejects = sum(
        not verify(ref, build_signature(base, probes, cfg, s), cal).same_model for s in seeds
    )
    rows = [
        f"| base (fresh run) | {np.median(same):.4f} | 1.0000 | - | {same_rejects}/{runs} | - | - |"
    ]
    for name in variants:
        model = load_fixture(name)
        sigs = [build_signature(model, probes, cfg, s) for s in seeds]
        scores = [per_probe_similarity(ref, s).mean() for s in sigs]
        results = [verify(ref, s, cal) for s in sigs]
        decided = [r.sequential.queries for r in results if r.sequential.decision == "different"]
        score_rejects = sum(not r.same_model for r in results)
        paired = per_probe_similarity(ref, build_signature(model, probes, cfg, 0)).mean()
        rows.append(
            f"| {name} | {np.median(scores):.4f} | {paired:.4f} | {auroc(same, scores):.3f} | "
            f"{score_rejects}/{runs} | {len(decided)}/{runs} | "
            f"{statistics.median(decided) if decided else '-'} |"
        )
    return rows


def adaptive_vs_random(n_probes: int) -> tuple[float, float, int]:
    """Mean SPRT queries to "different" on held-out variants: information-gain order (stats
    learned against seed1) vs random orders; undecided runs count as n_probes + 1."""
    cfg = EncoderConfig()
    probes = generate_probes(n_probes, seed=5)
    base = load_fixture("base")
    ref = build_signature(base, probes, cfg, 0)
    nulls = [build_signature(base, probes, cfg, s) for s in (1, 2, 3, 4)]
    cal = Calibration.from_null(ref, nulls)
    alts = [build_signature(load_fixture("seed1"), probes, cfg, s) for s in (1, 2)]
    stats = ProbeStats.from_runs(ref, nulls, alts, cal.probe_threshold)
    order = order_by_information(stats)
    rng = np.random.default_rng(0)
    adaptive, random = [], []
    held_out = ("arch", "int4", "finetuned", "distilled")
    for name in held_out:
        sims = per_probe_similarity(ref, build_signature(load_fixture(name), probes, cfg, 9))
        a = ordered_sprt(sims, order, stats)
        adaptive.append(a.queries if a.decision == "different" else n_probes + 1)
        for _ in range(50):
            r = ordered_sprt(sims, rng.permutation(n_probes).tolist(), stats)
            random.append(r.queries if r.decision == "different" else n_probes + 1)
    return float(np.mean(adaptive)), float(np.mean(random)), len(held_out)


def text_vs_mmd(probes: list[Probe], runs: int, names: Sequence[str]) -> list[str]:
    cfg = EncoderConfig(mode="text", n_samples=3, gen_tokens=24)
    base = load_fixture("base")
    ref = build_signature(base, probes, cfg, 0)
    ref_texts = [t for p in probes for t in generations(base, p, cfg, 0)]
    ref_x = _features(ref_texts)
    cal = Calibration.from_null(
        ref, [build_signature(base, probes, cfg, s) for s in (1, 2, 3)], alpha=0.05
    )
    rows = []
    for name in names:
        model = load_fixture(name)
        hdc_rej, mmd_rej = 0, 0
        for s in range(20, 20 + runs):
            sig = build_signature(model, probes, cfg, s)
            hdc_rej += per_probe_similarity(ref, sig).mean() < cal.score_threshold
            texts = [t for p in probes for t in generations(model, p, cfg, s)]
            mmd_rej += mmd_test(ref_x, _features(texts), seed=s) < 0.05
        label = "base (type I error)" if name == "base" else name
        rows.append(f"| {label} | {hdc_rej}/{runs} | {mmd_rej}/{runs} | - |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n_probes, runs, text_probes, text_runs = (8, 2, 3, 1) if args.quick else (64, 6, 16, 4)
    variants = VARIANTS[::3] if args.quick else VARIANTS
    text_models = ("base", "seed1") if args.quick else ("base", "finetuned", "seed1", "arch")
    probes = generate_probes(n_probes, seed=0)
    cfg = EncoderConfig()
    base = load_fixture("base")
    times = []
    for s in range(1 if args.quick else 3):
        t = time.perf_counter()
        sig = build_signature(base, generate_probes(64, seed=0), cfg, s)
        times.append(time.perf_counter() - t)
    tcfg = EncoderConfig(mode="text")
    t = time.perf_counter()
    build_signature(base, generate_probes(64, seed=0)[: 4 if args.quick else 64], tcfg, 0)
    text_time = (time.perf_counter() - t) * (16 if args.quick else 1)
    responses = np.stack([base_vector(f"resp{i}") for i in range(1000)])
    updaters = {
        "exp. decay": lambda: ExponentialDecay(cfg.dim, 0.95),
        "sliding window": lambda: SlidingWindow(cfg.dim, 500),
        "adaptive": lambda: AdaptiveWeighting(sig.bundled(), 4),
        "reservoir": lambda: Reservoir(cfg.dim, 500, 0),
    }
    inc: dict[str, float] = {}
    for label, make in updaters.items():
        ts = []
        for _ in range(5):
            upd = make()
            t = time.perf_counter()
            upd.update(responses)
            ts.append(time.perf_counter() - t)
        inc[label] = statistics.median(ts)
    key = Ed25519PrivateKey.generate()
    sizes, loads = {}, {}
    for level in LEVELS:
        data = export_edge(sig, key, level, "zstd")
        sizes[level] = len(data)
        lt = []
        for _ in range(50):
            t = time.perf_counter()
            load_edge(data, key.public_key())
            lt.append(time.perf_counter() - t)
        loads[level] = statistics.median(lt) * 1e3

    print(
        f"Tiny byte-level GPT family (numpy forward), D={cfg.dim}, {cfg.n_samples} samples per "
        f"probe (probe + fresh perturbations), top-k={cfg.top_k}."
    )
    print()
    print("| metric | ours | peer | ratio |")
    print("| --- | --- | --- | --- |")
    print(
        f"| signature construction, 64 probes, logit mode (s, median) | "
        f"{statistics.median(times):.2f} | - | - |"
    )
    print(
        f"| signature construction, 64 probes, text mode, 24 bytes per sample (s; quick: 4 x 16) | "
        f"{text_time:.2f} | - | - |"
    )
    for label, seconds in inc.items():
        print(
            f"| 1,000 responses into a D=16K signature, {label} (ms, median of 5) | "
            f"{seconds * 1e3:.1f} | - | - |"
        )
    for level in LEVELS:
        print(
            f"| edge package '{level}' (bytes, zstd; load+verify ms) | {sizes[level]} "
            f"({loads[level]:.2f} ms) | - | - |"
        )
    print()
    print(
        f"Discrimination in logit mode, {n_probes} probes, {runs} fresh runs per model; "
        "'fresh' = candidate answers freshly perturbed probes (null: the base model's own "
        "fresh runs, calibrated on 3 more); 'paired' = candidate answers the reference run's "
        "exact prompts (a deterministic model then reproduces similarity 1). SPRT alpha = "
        "beta = 0.01, p1 = 0.5."
    )
    print()
    print(
        "| model | similarity (fresh, median) | similarity (paired) | AUROC vs base | "
        "score test says different | SPRT says different | SPRT queries (median) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in discrimination(probes, runs, variants):
        print(row)
    ada, rnd, n_models = adaptive_vs_random(16 if args.quick else 32)
    print()
    print(
        f"Adaptive challenge selection: mean probes to an SPRT decision on {n_models} held-out "
        "variants (per-probe agreement rates learned against seed1 only); peer = random order."
    )
    print()
    print("| metric | ours | peer | ratio |")
    print("| --- | --- | --- | --- |")
    print(
        f"| mean queries to decision (information-gain order vs random) | {ada:.1f} | "
        f"{rnd:.1f} | {ada / rnd:.2f} |"
    )
    print()
    print(
        f"Black-box text mode vs an MMD test (Gaussian kernel on hashed byte trigrams, 200 "
        f"permutations) on the same generations: {text_probes} probes x 3 samples x 24 bytes, "
        f"alpha = 0.05, rejections out of {text_runs} runs."
    )
    print()
    print("| model | HDC text mode rejects | MMD rejects | ratio |")
    print("| --- | --- | --- | --- |")
    for row in text_vs_mmd(generate_probes(text_probes, seed=1), text_runs, text_models):
        print(row)


if __name__ == "__main__":
    main()
