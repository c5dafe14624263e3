"""Showcase for ``resontinex demo``: the gate deciding on a built-in signal stream, calibration.

Runs offline on the embedded defaults; writes ``decisions.json``, ``calibration.json`` and,
when matplotlib is installed, ``reliability.png`` under ``out_dir``.
"""

from __future__ import annotations

import json
from pathlib import Path

from resontinex.trust.calibration import CalibrationAdapter, reliability_diagram
from resontinex.trust.composite_trust_gate import CompositeTrustGate
from resontinex.trust.config import default_config
from resontinex.trust.signals import Decision, InputVector, route_to_resontinex
from resontinex.trust.synthetic import DEMO_STREAM, miscalibrated_scores

__all__ = ["showcase"]

#: What each decision means, and why the built-in stream reaches it (it is built to reach all four).
MEANING = {
    "EXECUTE": "act on it: trust in the monitor/pass tiers and above the floor; expected for "
    "the aligned, low-risk signals",
    "REVIEW": "a person decides: trust under 0.50 (tier_action) or under the floor "
    "(trust_floor); expected for the contested, weak and borderline signals",
    "DEFER": "try again later: trusted, but the confidence band is at or above the entropy "
    "threshold; expected for the confident answer with a wide band",
    "ABORT": "refuse: trust in the block tier (< 0.25); expected for the suspected hallucination",
}


def showcase(out_dir: Path) -> str:
    """Run the demo, write its artifacts under ``out_dir`` and return a readable summary."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = default_config()

    lines = [
        f"resontinex-trust: CompositeTrustGate on {len(DEMO_STREAM)} signals "
        f"(config {config.config_hash}, floor {config.trust_floor}, "
        f"entropy {config.entropy_threshold})",
        f"  {'signal':<40} {'a':>5} {'r':>5} {'c':>5}  {'score':>6} {'tier':<8} "
        f"{'decision':<8} rule",
    ]
    records = []
    for label, a, r, c in DEMO_STREAM:
        gate = CompositeTrustGate(InputVector(a, r, c), config)
        lines.append(
            f"  {label:<40} {a:>5.2f} {r:>5.2f} {c:>5.2f}  {gate.trust_score:>6.3f} "
            f"{gate.risk_tier.value:<8} {gate.decision.name:<8} {gate.rule_fired}"
        )
        records.append(
            {"signal": label, "verb": route_to_resontinex(gate.decision), **gate.explain()}
        )
    (out_dir / "decisions.json").write_text(json.dumps(records, indent=2))
    counts = {
        d.name: sum(r["risk_assessment"]["decision"] == d.value for r in records) for d in Decision
    }
    verdicts = ["verdicts:"] + [
        f"  {name} x{count}: {MEANING[name]}"
        + ("" if count else " (UNEXPECTED: the stream did not reach it)")
        for name, count in counts.items()
    ]

    train_s, train_y = miscalibrated_scores(4000, seed=1)
    test_s, test_y = miscalibrated_scores(4000, seed=2)
    adapter = CalibrationAdapter("auto")
    adapter.fit(train_s, train_y)
    report = adapter.report(test_s, test_y)
    before, after = report["before"], report["after"]
    (out_dir / "calibration.json").write_text(
        json.dumps({"method": adapter.fitted_method, "fit": adapter.fit_report, **report}, indent=2)
    )
    lines.append(
        f"calibration ({adapter.fitted_method}; 4000 train / 4000 held-out rows from an "
        f"over-confident source):\n"
        f"  ECE {before['ece']:.4f} -> {after['ece']:.4f}, "
        f"Brier {before['brier']:.4f} -> {after['brier']:.4f}, "
        f"AUC {before['auc']:.4f} -> {after['auc']:.4f}"
    )
    png = out_dir / "reliability.png"
    if not reliability_diagram(
        png, {"raw": before, "calibrated": after}, "Trust score reliability (held-out)"
    ):
        lines.append("reliability diagram skipped (matplotlib not installed)")
    improved = after["ece"] < before["ece"]
    verdicts.append(
        f"  calibration ECE {'fell' if improved else 'did NOT fall'}: "
        + (
            "expected, the source is over-confident by construction and the fitted "
            "calibrator corrects it on held-out rows"
            if improved
            else "UNEXPECTED, the calibrator should correct an over-confident source"
        )
    )
    return "\n".join(lines + verdicts)
