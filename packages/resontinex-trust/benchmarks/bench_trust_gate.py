"""CompositeTrustGate speed, memory and import cost against scikit-learn on the same function.

The peer is ``LogisticRegression`` with ``coef_`` set to the gate's normalised weights and
``intercept_ = 0`` on the features logit(clamp(x')), so ``predict_proba`` computes exactly the
gate's raw score (checked below). The peer gets its feature transform in numpy; ours includes
input validation, the tier and the decision. Usage: ``python bench_trust_gate.py [--quick]``.
"""

from __future__ import annotations

import argparse
import gc
import math
import platform
import random
import re
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression

from resontinex.trust import (
    CompositeTrustGate,
    InputVector,
    default_config,
    evaluate_batch,
)
from resontinex.trust.composite_trust_gate import CLAMP_EPSILON


def per_call_ns(
    fn: Callable[[], object],
    calls: int,
    repeats: int,
    clock: Callable[[], int] = time.thread_time_ns,
) -> float:
    """Median over ``repeats`` of (time for ``calls`` calls) / calls, in nanoseconds.

    The default clock is this thread's CPU time: the machine is shared, and wall time mostly
    measures the other tenants. ``time.perf_counter_ns`` gives the wall-clock view.
    """
    samples = []
    for _ in range(repeats):
        gc.disable()
        start = clock()
        fn()
        samples.append((clock() - start) / calls)
        gc.enable()
    return statistics.median(samples)


def peer_model(weights: tuple[float, float, float]) -> LogisticRegression:
    model = LogisticRegression()
    model.coef_ = np.asarray([weights])
    model.intercept_ = np.zeros(1)
    model.classes_ = np.asarray([0, 1])
    return model


def features(a: np.ndarray, r: np.ndarray, c: np.ndarray) -> np.ndarray:
    lo, hi = CLAMP_EPSILON, 1.0 - CLAMP_EPSILON
    cols = [np.clip(a, lo, hi), np.clip(1.0 - r, lo, hi), np.clip(1.0 - c, lo, hi)]
    return np.column_stack([np.log(x / (1.0 - x)) for x in cols])


@dataclass(slots=True, frozen=True)
class FrozenGateResult:
    """The design the seed suggested (a frozen dataclass holding one evaluation's results)."""

    inputs: tuple[float, float, float]
    config: object
    calibrator: object
    raw_trust_score: float
    calibrated_trust_score: float | None
    trust_score: float
    risk_tier: object
    decision: object
    rule_fired: str


def import_ms(statement: str, runs: int) -> float:
    """Median cumulative import time (``-X importtime``) of the statement's top module, in ms."""
    module = statement.split()[1]
    times = []
    for _ in range(runs):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", statement],
            capture_output=True,
            text=True,
            check=True,
        )
        for line in proc.stderr.splitlines():
            match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|\s+(\S+)$", line.strip())
            if match and match.group(2) == module:
                times.append(int(match.group(1)) / 1000)
    return statistics.median(times)


def import_cpu_ms(module: str, runs: int) -> float:
    """Median CPU time (process_time) spent importing ``module`` in a fresh interpreter, in ms."""
    code = (
        "import time; t = time.process_time_ns(); "
        f"import {module}; print((time.process_time_ns() - t) / 1e6)"
    )
    times = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(runs)
    ]
    return statistics.median(times)


def third_party_after_import() -> list[str]:
    code = (
        "import sys; before=set(sys.modules); import resontinex.trust; "
        "print(' '.join(sorted({m.split('.')[0] for m in set(sys.modules)-before})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    names = set(out.stdout.split()) - set(sys.stdlib_module_names) - {"resontinex"}
    return sorted(n for n in names if not n.startswith("_"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    calls, repeats = (10_000, 3) if args.quick else (200_000, 15)
    batch_rows, batch_repeats = (100_000, 3) if args.quick else (1_000_000, 7)
    peer_calls = 200 if args.quick else 5_000

    config = default_config()
    rng = random.Random(0)
    rows = [(rng.random(), rng.random(), rng.random()) for _ in range(1000)]
    loops = calls // len(rows)
    vectors = [InputVector(*row) for row in rows]

    def ours_full() -> None:
        for _ in range(loops):
            for a, r, c in rows:
                gate = CompositeTrustGate(InputVector(a, r, c), config)
                gate.trust_score, gate.risk_tier, gate.decision  # noqa: B018

    def ours_prebuilt() -> None:
        for _ in range(loops):
            for v in vectors:
                gate = CompositeTrustGate(v, config)
                gate.trust_score, gate.risk_tier, gate.decision  # noqa: B018

    def empty_loop() -> None:
        for _ in range(loops):
            for _a, _r, _c in rows:
                pass

    model = peer_model(config.weights)
    arrays = [np.asarray([row]) for row in rows]
    feature_rows = [features(x[:, 0], x[:, 1], x[:, 2]) for x in arrays]
    peer_loops = max(1, peer_calls // len(rows))

    def peer_single() -> None:
        for _ in range(peer_loops):
            for x in arrays[: peer_calls // peer_loops]:
                model.predict_proba(features(x[:, 0], x[:, 1], x[:, 2]))

    def peer_single_pretransformed() -> None:
        for _ in range(peer_loops):
            for f in feature_rows[: peer_calls // peer_loops]:
                model.predict_proba(f)

    # Same function: sklearn's probabilities equal our raw scores.
    a, r, c = (np.asarray(col) for col in zip(*rows, strict=True))
    peer_scores = model.predict_proba(features(a, r, c))[:, 1]
    ours_scores = [CompositeTrustGate(v, config).raw_trust_score for v in vectors]
    max_diff = float(np.max(np.abs(peer_scores - np.asarray(ours_scores))))

    full = per_call_ns(ours_full, calls, repeats)
    full_wall = per_call_ns(ours_full, calls, repeats, time.perf_counter_ns)
    prebuilt = per_call_ns(ours_prebuilt, calls, repeats)
    loop = per_call_ns(empty_loop, calls, repeats)
    n_peer = peer_loops * (peer_calls // peer_loops)
    peer = per_call_ns(peer_single, n_peer, max(3, repeats // 3))
    peer_wall = per_call_ns(peer_single, n_peer, max(3, repeats // 3), time.perf_counter_ns)
    peer_pre = per_call_ns(peer_single_pretransformed, n_peer, max(3, repeats // 3))

    brng = np.random.default_rng(1)
    ba, br, bc = brng.random(batch_rows), brng.random(batch_rows), brng.random(batch_rows)
    batch = per_call_ns(lambda: evaluate_batch(ba, br, bc, config), batch_rows, batch_repeats)
    peer_batch = per_call_ns(
        lambda: model.predict_proba(features(ba, br, bc)), batch_rows, batch_repeats
    )
    result = evaluate_batch(ba, br, bc, config)
    batch_diff = float(
        np.max(np.abs(result.raw_trust_scores - model.predict_proba(features(ba, br, bc))[:, 1]))
    )

    gate = CompositeTrustGate(vectors[0], config)
    count = 10_000
    tracemalloc.start()
    snap = tracemalloc.take_snapshot()
    kept = [CompositeTrustGate(InputVector(a_, r_, c_), config) for a_, r_, c_ in rows * 10]
    per_gate = (
        sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(snap, "filename")) / count
    )
    tracemalloc.stop()
    del kept
    frozen = FrozenGateResult(
        (0.8, 0.3, 0.2),
        config,
        None,
        gate.raw_trust_score,
        gate.calibrated_trust_score,
        gate.trust_score,
        gate.risk_tier,
        gate.decision,
        gate.rule_fired,
    )

    runs = 1 if args.quick else 9
    ours_import = import_ms("import resontinex.trust", runs)
    peer_import = import_ms("import sklearn.linear_model", runs)
    ours_import_cpu = import_cpu_ms("resontinex.trust", runs)
    peer_import_cpu = import_cpu_ms("sklearn.linear_model", runs)
    extra = third_party_after_import()

    print(
        f"CompositeTrustGate vs scikit-learn {sklearn.__version__} LogisticRegression with the "
        f"gate's weights as coef_ (max |Δscore| {max_diff:.1e} scalar, {batch_diff:.1e} batch); "
        f"Python {platform.python_version()}, numpy {np.__version__}. Times are per call, "
        f"median of {repeats} runs of {calls} calls, in thread CPU time unless marked wall "
        f"clock; the loop itself costs {loop:.0f} ns per call and is included in ours. The "
        f"seed claimed ~500 ns; the public original took ~45 µs.\n"
    )
    print("| metric | ours | peer | ratio (peer / ours) |")
    print("| --- | --- | --- | --- |")
    print(
        f"| full evaluation, InputVector + gate + score/tier/decision (ns) | {full:.0f} | "
        f"{peer:.0f} (transform + predict_proba, 1 row) | {peer / full:.1f}x |"
    )
    print(
        f"| gate only, pre-built InputVector (ns) | {prebuilt:.0f} | {peer_pre:.0f} "
        f"(predict_proba on pre-computed logit row) | {peer_pre / prebuilt:.1f}x |"
    )
    print(
        f"| full evaluation, wall clock on the shared machine (ns) | {full_wall:.0f} | "
        f"{peer_wall:.0f} | {peer_wall / full_wall:.1f}x |"
    )
    print(
        f"| full evaluation meets the 1 µs target (CPU time) | {'yes' if full <= 1000 else 'no'} "
        f"({full:.0f} ns) | — | — |"
    )
    print(
        f"| evaluate_batch, {batch_rows:,} rows (ns/row; ours adds tiers + decisions) | "
        f"{batch:.1f} | {peer_batch:.1f} (transform + predict_proba) | {peer_batch / batch:.2f}x |"
    )
    print(
        f"| memory per gate, sys.getsizeof (bytes) | {sys.getsizeof(gate)} | "
        f"{sys.getsizeof(frozen)} (frozen slotted dataclass, same fields) | "
        f"{sys.getsizeof(frozen) / sys.getsizeof(gate):.2f}x |"
    )
    print(
        f"| memory per gate incl. InputVector and floats, tracemalloc (bytes) | {per_gate:.0f} | "
        f"— | — |"
    )
    print(
        f"| import time, CPU (ms) | {ours_import_cpu:.1f} (resontinex.trust) | "
        f"{peer_import_cpu:.1f} (sklearn.linear_model) | {peer_import_cpu / ours_import_cpu:.1f}x |"
    )
    print(
        f"| import time, -X importtime cumulative, wall clock (ms) | {ours_import:.1f} "
        f"(resontinex.trust) | {peer_import:.1f} (sklearn.linear_model) | "
        f"{peer_import / ours_import:.1f}x |"
    )
    print(
        f"| third-party modules loaded by `import resontinex.trust` | "
        f"{', '.join(extra) or 'none'} | — | — |"
    )
    assert max_diff < 1e-12, "the peer does not compute the same function"
    assert batch_diff < 1e-12, "the peer does not compute the same function on the batch"
    assert not math.isnan(full)


if __name__ == "__main__":
    main()
