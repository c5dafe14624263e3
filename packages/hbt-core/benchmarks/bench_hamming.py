"""Packed Hamming 1-vs-N at D = 16,384: hbt-core (numpy bitwise_count on uint64 words) vs
torchhd's binary spatter code (BSC) model, same machine, same run. Reports medians."""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from hbt_core.hdc import hamming_many, pack, unpack

D = 16_384


def _median_rate(fn: object, n: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return n / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 20_000 if args.quick else 100_000
    repeats = 3 if args.quick else 7
    peer_repeats = 3
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2, size=(n, D), dtype=np.uint8)
    matrix = pack(bits)
    query = pack(rng.integers(0, 2, size=D, dtype=np.uint8))
    ours = _median_rate(lambda: hamming_many(query, matrix), n, repeats)

    import torch
    import torchhd

    torch.set_num_threads(os.cpu_count() or 1)
    peer_m = torchhd.BSCTensor(torch.from_numpy(bits.astype(bool)))
    peer_q = torchhd.BSCTensor(torch.from_numpy(unpack(query).astype(bool)))[None, :]
    expected = D - hamming_many(query, matrix)
    got = torchhd.hamming_similarity(peer_q, peer_m)[0].numpy()
    assert np.array_equal(got, expected), "peer and ours disagree"
    peer = _median_rate(lambda: torchhd.hamming_similarity(peer_q, peer_m), n, peer_repeats)
    print(
        f"Hamming 1-vs-N, D={D}, N={n}, {os.cpu_count()} cores, median of {repeats} runs "
        f"(peer {peer_repeats}); "
        f"peer = torchhd {torchhd.__version__} BSC (bool tensors); results checked equal."
    )
    print()
    print("| metric | ours | peer | ratio |")
    print("| --- | --- | --- | --- |")
    print(f"| comparisons per second | {ours:,.0f} | {peer:,.0f} | {ours / peer:.1f}x |")
    try:
        from hbt_core.hdc import hamming_many_numba

        assert np.array_equal(hamming_many_numba(query, matrix), D - expected)
        numba_rate = _median_rate(lambda: hamming_many_numba(query, matrix), n, repeats)
        print(
            f"| comparisons per second, numba path | {numba_rate:,.0f} | {peer:,.0f} | "
            f"{numba_rate / peer:.1f}x |"
        )
    except ImportError:
        print("| comparisons per second, numba path | numba not installed | - | - |")
    print(f"| bytes per hypervector | {D // 8} | {D} | {D / (D // 8):.0f}x smaller |")


if __name__ == "__main__":
    main()
