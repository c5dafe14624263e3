"""``resontinex demo`` showcase: a real budget report, its analysis, routing and the governor.

Runs offline on the embedded defaults in a few seconds. Artifacts under ``out_dir``:
``budget_report.json`` (raw samples), ``budget_analysis.json``, ``budget_comment.md``,
``routing_decisions.json``, ``governor.json`` and, when matplotlib is importable,
``token_means.png``.
"""

from __future__ import annotations

import json
from pathlib import Path

from prometheus_client import CollectorRegistry

from fusion_ops.backends import OfflineBackend
from fusion_ops.budget_analysis import (
    BudgetAnalysis,
    Thresholds,
    analyze_report,
    render_markdown,
    render_text,
)
from fusion_ops.collect import collect_report, parse_strategy
from fusion_ops.governance import EnergyGovernor
from fusion_ops.health import budget_status_payload
from fusion_ops.runtime_router import RuntimeRouter, load_golden_scenarios
from fusion_ops.tokenizer import count_tokens

__all__ = ["showcase"]

RUNS = 10
DEMO_SCENARIOS = ("fin-refund", "kw-state-machine", "kw-monitoring", "gen-plain")


def _plot(analysis: BudgetAnalysis, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = analysis.scenarios
    fig, ax = plt.subplots(figsize=(9, 4))
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], [r.baseline_mean_tokens for r in rows], 0.4, label="baseline")
    ax.bar([x + 0.2 for x in xs], [r.candidate_mean_tokens for r in rows], 0.4, label="candidate")
    ax.set_xticks(list(xs), [r.id for r in rows], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("mean tokens per run (input + output)")
    ax.set_xlabel("golden scenario")
    ax.set_title("Budget gate: plain prompt vs prompt with the rollback_first overlay")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return True


def showcase(out_dir: Path) -> str:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines: list[str] = ["fusion-ops: budget gate, micro-overlay routing, energy governance"]

    # 1. a real report: every scenario run RUNS times per side through the offline backend
    scenarios = load_golden_scenarios()[:12]
    backend = OfflineBackend(seed=7)
    report = collect_report(
        scenarios,
        baseline=parse_strategy("plain"),
        candidate=parse_strategy("overlay:rollback_first"),
        backend=backend,
        runs=RUNS,
    )
    (out_dir / "budget_report.json").write_text(json.dumps(report.to_json(), indent=1))
    analysis = analyze_report(report, Thresholds(latency_warn=2000, latency_block=5000))
    (out_dir / "budget_analysis.json").write_text(json.dumps(analysis.to_dict(), indent=2))
    (out_dir / "budget_comment.md").write_text(render_markdown(analysis))
    lines += [
        f"1. Budget report: {len(scenarios)} scenarios x {RUNS} runs per side, backend "
        f"{backend.name}; baseline = plain prompt, candidate = prompt + rollback_first overlay",
        render_text(analysis),
    ]
    same = collect_report(
        scenarios,
        baseline=parse_strategy("routed"),
        candidate=parse_strategy("routed"),
        backend=OfflineBackend(seed=8),
        runs=RUNS,
    )
    aa = analyze_report(same)
    assert aa.token_delta is not None
    lines += [
        f"   Same prompts on both sides (A/A): {aa.status.upper()}, token delta "
        f"{aa.token_delta.estimate:+.2f}% [{aa.token_delta.low:.2f}, {aa.token_delta.high:.2f}]",
    ]

    # 2. routing
    router = RuntimeRouter(registry=CollectorRegistry())
    chosen = [s for s in load_golden_scenarios() if s["id"] in DEMO_SCENARIOS]
    decisions = []
    lines.append("2. Routing decisions")
    for scenario in chosen:
        decision = router.route_scenario(scenario)
        decisions.append({"scenario": scenario, "decision": decision.to_dict()})
        lines.append(
            f"   [{scenario['category']}, complexity {scenario['complexity']}] "
            f"{scenario['description']!r}"
        )
        lines.append(
            f"   -> {decision.selected_overlay or 'abstain'} (confidence "
            f"{decision.confidence:.2f}; fallbacks {list(decision.fallback_options) or '-'})"
        )
        lines += [f"      {why}" for why in decision.reasoning[1:]]
    (out_dir / "routing_decisions.json").write_text(json.dumps(decisions, indent=2))
    task = "Process the refund for order 1042."
    prompt = router.apply_overlay(task, "rollback_first")
    lines += [
        f"   apply_overlay(task, 'rollback_first'): {count_tokens(task)} -> "
        f"{count_tokens(prompt)} tokens",
    ]

    # 3. governance
    governor = EnergyGovernor(50_000, period="demo-day")
    estimate = governor.estimate(2_000, complexity=0.82, trust_score=0.55, entropy=0.40)
    reservation = governor.request(estimate)
    spent = governor.commit(reservation, actual_cost=estimate.cost * 0.9)
    lines.append(
        f"3. Governor: base 2000 units -> estimate {estimate.cost:.0f} "
        f"(x{estimate.multiplier:.2f}); reserved {reservation.id}, committed {spent:.0f}"
    )
    lines += [
        f"   {'applied' if m.applied else 'skipped'} {m.factor} x{m.multiplier}: {m.reason}"
        for m in estimate.breakdown
    ]
    status = budget_status_payload(governor)
    (out_dir / "governor.json").write_text(
        json.dumps({"estimate": estimate.to_dict(), "budget_status": status}, indent=2)
    )
    ledger = status["ledger"]
    lines.append(
        f"   ledger: {ledger['committed']:.0f}/{ledger['budget']:.0f} committed, "
        f"utilisation {ledger['utilisation']:.1%}, status {status['status']}"
    )
    if not _plot(analysis, out_dir / "token_means.png"):
        lines.append("   (no token_means.png: matplotlib is not installed)")
    overlay_tokens = count_tokens(prompt) - count_tokens(task)
    lines += _verdicts(analysis, aa.status, status["status"], overlay_tokens, ledger["utilisation"])
    return "\n".join(lines)


def _verdicts(
    analysis: BudgetAnalysis, same: str, ledger: str, overlay_tokens: int, utilisation: float
) -> list[str]:
    """One line per verdict: what it means and whether the demo data was built to produce it."""

    def mark(got: str, want: str) -> str:
        return "expected" if got == want else f"UNEXPECTED (expected {want.upper()})"

    gate = analysis.status
    block = analysis.thresholds.token_block
    return [
        "verdicts:",
        f"  budget gate {gate.upper()}, {mark(gate, 'block')}: the candidate adds a "
        f"{overlay_tokens}-token overlay to every prompt, far above the {block:g}% token-growth "
        "limit; in CI this exit 1 "
        "stops the merge, which is the gate's job (the demo itself exits 0)",
        f"  A/A check {same.upper()}, {mark(same, 'pass')}: identical prompts on both sides "
        "must not differ, so the gate is not blocking on noise",
        f"  governor ledger {ledger}, {mark(ledger, 'ok')}: one reservation uses "
        f"{utilisation:.0%} of the period budget, far from the review (85%) and brake (95%) "
        "limits",
    ]
