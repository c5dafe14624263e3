"""Per release-contract guard: false-fail rate under the null and power at a planted 1 pp defect.

Simulated evaluations with a known truth (the only way to measure an error rate): 2000 queries
(quick: 1000), 30 % routed to T1, per-query ΔnDCG@10 of a routed query in {−0.4, 0, +0.4}, graded
T0 nDCG levels, gamma latencies with 5 % load spikes (×3) that hit both arms of the same run, a
router whose confidence is calibrated (P(benefit) = confidence). Each guard of the current contract
("ours") runs on the same simulated data as the rule it replaced ("peer"):

- quality (global): ours BCa LCB > −δ (δ = 0) — peer: one-sided t LCB > 0 (same rule, other CI);
- hard-NL slice: ours LCB ≥ −0.02, needs ≥ 10 routed slice queries — peer: LCB ≥ 0 on any n;
- Jaccard@10: ours mean over T1-routed queries — peer: mean over all with 1.0 for unrouted;
- AECE drift: ours bias-corrected permutation test (windows 1521 / 1014) — peer: |ΔAECE| ≤ 0.01;
- tail latency: ours p95 and p99 relative to T0 in the same run with a bootstrap interval —
  peer: p99/p95 ≤ 2 of the candidate alone (the rule it replaced).

Null = no defect; the planted defect is 1 pp beyond what the guard protects: ΔnDCG +1 pp (quality
power = pass rate), −(2 + 1) pp on the hard-NL slice, routed Jaccard 1 pp below 0.80, AECE 1 pp
above the 0.01 tolerance, and for latency the routed queries' T1 slower by enough to put the
candidate's p95 at the SLO + 1 pp of T0's p95 (default SLO 2 × T0). AECE and latency, which fail
only on signal, also get a large defect (AECE +5 pp, p95 at 1.5 × the SLO).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import context, row
from scipy import stats

from t1_deploy.contract import (
    BaselineMetrics,
    CandidateEvidence,
    ProductionGuards,
    aece_guard,
    hard_nl_guard,
    jaccard_guard,
    latency_guards,
    noninferiority_guard,
)
from t1_deploy.stats import _aece

ROUTED = 0.3
STEP = 0.4


def quality_diffs(
    rng: np.random.Generator, n: int, effect: float, routed: np.ndarray
) -> np.ndarray:
    """Routed queries move by ±0.4 with equal odds (null), plus extra +0.4 moves worth `effect`."""
    extra = abs(effect) / (STEP * ROUTED)  # moves P(±0.4) so the mean over all is `effect`
    p = [0.1, 0.8 - extra, 0.1 + extra] if effect >= 0 else [0.1 + extra, 0.8 - extra, 0.1]
    moves = rng.choice([-STEP, 0.0, STEP], size=n, p=p)
    return np.where(routed, moves, 0.0)


def latencies(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """T0 latency and a shared per-query load factor (5 % of queries hit a ×3 spike)."""
    base = rng.gamma(4.0, 0.1, n) + 0.1
    load = np.where(rng.random(n) < 0.05, 3.0, 1.0)
    return base, load


def t_lcb(x: np.ndarray) -> float:
    return float(x.mean() - stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))


def calibrated(rng: np.random.Generator, n: int, drift: float) -> tuple[np.ndarray, np.ndarray]:
    """Confidence and benefit; `drift` > 0 pushes each confidence that far from the truth
    (towards the nearer extreme: over-confidence), so AECE rises by about `drift`."""
    truth = rng.random(n)
    conf = np.clip(truth + drift * np.sign(truth - 0.5), 0, 1)
    return conf, (rng.random(n) < truth).astype(float)


def simulate(n: int, sims: int, guards: ProductionGuards, seed: int) -> dict[str, list[float]]:
    """Fail (or pass) indicators of each guard, ours and peer, under the null and the defect."""
    out: dict[str, list[float]] = {}

    def add(key: str, value: bool) -> None:
        out.setdefault(key, []).append(float(value))

    for s in range(sims):
        rng = np.random.default_rng(seed + s)
        routed = rng.random(n) < ROUTED
        hard = rng.random(n) < 0.3
        base = rng.choice([0.0, 0.3869, 0.5, 0.6309, 1.0], size=n)
        for label, effect in (("null", 0.0), ("defect", 0.01)):
            d = quality_diffs(rng, n, effect, routed)
            ours = noninferiority_guard("q", d, guards, margin=0.0, strict=True)
            add(f"quality pass {label} ours", ours.status == "passed")
            add(f"quality pass {label} peer", t_lcb(d) > 0)
        for label, effect in (("null", 0.0), ("defect", -0.03)):
            d = quality_diffs(rng, n, 0.0, routed)
            d = np.where(hard, quality_diffs(rng, n, effect, routed), d)
            ev = CandidateEvidence(
                ndcg_candidate=base + d, ndcg_baseline=base, hard_nl=hard, routed=routed
            )
            add(f"hard fail {label} ours", hard_nl_guard(ev, guards).status == "failed")
            add(f"hard fail {label} peer", t_lcb(d[hard]) < 0)
        # Jaccard: the index is garbage on a 3 % routed share; or 1 pp below the threshold at 30 %.
        few = rng.random(n) < 0.03
        for label, level, mask in (
            ("null", 0.85, routed),
            ("defect", 0.79, routed),
            ("garbage", 0.2, few),
        ):
            jac = np.clip(rng.normal(level, 0.05, n), 0, 1)
            ev = CandidateEvidence(
                ndcg_candidate=base, ndcg_baseline=base, jaccard=jac, routed=mask
            )
            add(f"jaccard fail {label} ours", jaccard_guard(ev, guards).status == "failed")
            add(f"jaccard fail {label} peer", np.where(mask, jac, 1.0).mean() < 0.80)
        for label, drift in (("null", 0.0), ("defect", 0.02), ("large", 0.05)):
            ref_c, ref_b = calibrated(rng, 1521, 0.0)
            cur_c, cur_b = calibrated(rng, 1014, drift)
            baseline = BaselineMetrics(0.4, 1.0, 0.0, 1014, ref_c, ref_b)
            ev = CandidateEvidence(
                ndcg_candidate=np.zeros(1014),
                ndcg_baseline=np.zeros(1014),
                router_confidence=cur_c,
                realised_benefit=cur_b,
            )
            add(f"aece fail {label} ours", aece_guard(baseline, ev, guards).status == "failed")
            raw = abs(_aece(cur_c, cur_b, 10) - _aece(ref_c, ref_b, 10))
            add(f"aece fail {label} peer", raw > 0.01)
        t0, load = latencies(rng, n)
        p95_t0 = np.percentile(t0 * load, 95)
        slo = guards.slo_p95_ratio
        for label, target in (("null", 0.0), ("defect", slo + 0.01), ("large", 1.5 * slo)):
            extra = np.where(routed, rng.gamma(4.0, 0.1, n) + 0.1, 0.0)
            if target:  # scale the routed queries' T1 until the candidate's p95 is target × T0's
                lo, hi = 0.0, 50.0
                for _ in range(40):
                    mid = (lo + hi) / 2
                    p95 = np.percentile((t0 + np.where(routed, mid * extra, 0)) * load, 95)
                    lo, hi = (mid, hi) if p95 < target * p95_t0 else (lo, mid)
                extra = extra * lo
            else:  # routed T1 costs no more than a T0 draw: the candidate is T0's distribution
                extra = np.where(routed, rng.gamma(4.0, 0.1, n) + 0.1 - t0, 0.0)
            cand = (t0 + extra) * load
            ev = CandidateEvidence(
                ndcg_candidate=base,
                ndcg_baseline=base,
                latency_candidate_ms=cand,
                latency_baseline_ms=t0 * load,
            )
            ours_lat = {g.name: g.status for g in latency_guards(ev, guards)}
            add(f"latency fail {label} ours", "failed" in ours_lat.values())
            add(
                f"latency fail {label} peer",
                np.percentile(cand, 99) / np.percentile(cand, 95) > 2.0,
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 1000 if args.quick else 2000
    sims = 20 if args.quick else 100
    guards = ProductionGuards(n_resamples=999, aece_permutations=199 if args.quick else 499)
    start = time.perf_counter()
    rates = {k: float(np.mean(v)) for k, v in simulate(n, sims, guards, seed=0).items()}
    slo = guards.slo_p95_ratio
    seconds = time.perf_counter() - start
    print(
        context(
            f"{sims} simulated evaluations of {n} queries per cell (30 % routed); AECE windows "
            f"1521 / 1014; {seconds:.0f} s"
        )
    )
    print()
    print(row("metric", "ours", "peer", "ratio"))
    print(row("---", "---", "---", "---"))
    lines = [
        ("quality: pass rate, true Δ = 0 (false authorisation, target ≤ 5 %)", "quality pass null"),
        ("quality: pass rate (power), true Δ = +1 pp", "quality pass defect"),
        ("hard-NL: false-fail rate, slice Δ = 0", "hard fail null"),
        ("hard-NL: fail rate (power), slice Δ = −3 pp (margin 2 pp + 1 pp)", "hard fail defect"),
        ("Jaccard: false-fail rate, routed Jaccard 0.85", "jaccard fail null"),
        (
            "Jaccard: fail rate (power), routed Jaccard 0.79 (1 pp below 0.80)",
            "jaccard fail defect",
        ),
        ("Jaccard: fail rate, garbage index (0.2) on 3 % routed", "jaccard fail garbage"),
        (
            "AECE drift: false-fail rate, no drift, windows 1521/1014 (target ≤ 5 %)",
            "aece fail null",
        ),
        ("AECE drift: fail rate (power), AECE +2 pp (tolerance 1 pp + 1 pp)", "aece fail defect"),
        ("AECE drift: fail rate, AECE +5 pp", "aece fail large"),
        ("latency: false-fail rate, same distribution with load spikes", "latency fail null"),
        (
            f"latency: fail rate (power), p95 at {slo + 0.01:.2f} × T0 (SLO {slo:g} + 1 pp)",
            "latency fail defect",
        ),
        (f"latency: fail rate, p95 at {1.5 * slo:g} × T0", "latency fail large"),
    ]
    for label, key in lines:
        ours, peer = rates[f"{key} ours"], rates[f"{key} peer"]
        ratio = f"{ours / peer:.2f}" if peer > 0 else "—"
        print(row(label, f"{ours:.3f}", f"{peer:.3f}", ratio))


if __name__ == "__main__":
    main()
