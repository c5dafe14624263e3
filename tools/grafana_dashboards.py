"""Write the Grafana dashboards (one per member) into configs/grafana/dashboards/.

The dashboards are generated so that every panel has the same shape and every query names a
metric the code exports (tools/tests/test_ops_assets.py checks both, and that the committed JSON
equals what this script writes). Run: python tools/grafana_dashboards.py
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "configs" / "grafana" / "dashboards"

# dashboard uid -> (title, [(panel title, PromQL, unit)])
DASHBOARDS: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "resontinex-trust": (
        "RESONTINEX trust gate",
        [
            (
                "Decisions per second by decision",
                "sum by (decision) (rate(trust_gate_decisions_total[5m]))",
                "ops",
            ),
            (
                "Evaluation latency p50 / p99",
                "histogram_quantile(0.99, sum by (le) (rate(trust_gate_evaluation_seconds_bucket[5m])))",
                "s",
            ),
            (
                "Trust score distribution (median)",
                "histogram_quantile(0.5, sum by (le) (rate(trust_gate_trust_score_bucket[5m])))",
                "percentunit",
            ),
            ("Risk tiers per second", "sum by (tier) (rate(trust_gate_tier_total[5m]))", "ops"),
            (
                "Floor violations and entropy flags per hour",
                "increase(trust_gate_floor_violations_total[1h])",
                "short",
            ),
            ("Evaluation errors per second", "rate(trust_gate_evaluation_errors_total[5m])", "ops"),
            ("Circuit breaker open", "trust_gate_circuit_breaker_open", "bool"),
        ],
    ),
    "fusion-ops": (
        "RESONTINEX fusion-ops budget and routing",
        [
            ("Budget utilisation", "fusion_budget_utilisation_ratio", "percentunit"),
            (
                "Budget requests by outcome",
                "sum by (outcome) (rate(fusion_budget_requests_total[5m]))",
                "ops",
            ),
            (
                "Committed units per hour",
                "increase(fusion_budget_committed_units_total[1h])",
                "short",
            ),
            (
                "Routing decisions by overlay",
                "sum by (overlay) (rate(fusion_router_decisions_total[5m]))",
                "ops",
            ),
            (
                "Overlay load failures",
                "increase(fusion_router_overlay_load_failures_total[1h])",
                "short",
            ),
        ],
    ),
    "cert": (
        "RESONTINEX CERT: trajectory and coordination",
        [
            (
                "Trajectory analyses per second",
                "sum by (mode) (rate(cert_trajectory_analyses_total[5m]))",
                "ops",
            ),
            (
                "Quality-check failures by check",
                "sum by (check) (rate(cert_trajectory_quality_failures_total[15m]))",
                "ops",
            ),
            (
                "Analysis latency p95",
                "histogram_quantile(0.95, sum by (le) (rate(cert_trajectory_analysis_duration_seconds_bucket[5m])))",
                "s",
            ),
            (
                "CPU fallbacks after OOM",
                "increase(cert_trajectory_cpu_fallbacks_total[1h])",
                "short",
            ),
            (
                "API calls by status",
                "sum by (status) (rate(cert_coordination_api_calls_total[5m]))",
                "ops",
            ),
            (
                "API cost per hour by model (USD)",
                "sum by (model) (increase(cert_coordination_cost_usd_total[1h]))",
                "currencyUSD",
            ),
            (
                "Circuit breaker state (0 closed, 1 half-open, 2 open)",
                "max by (breaker) (cert_coordination_breaker_state)",
                "short",
            ),
            (
                "Judge parse failures",
                "increase(cert_coordination_judge_parse_failures_total[1h])",
                "short",
            ),
        ],
    ),
    "hbt-core": (
        "RESONTINEX HBT behavioural drift",
        [
            (
                "Probe similarity to the reference",
                "hbt_monitor_probe_similarity_ratio",
                "percentunit",
            ),
            (
                "Drift alerts by kind",
                "sum by (kind) (increase(hbt_monitor_alerts_total[1h]))",
                "short",
            ),
            ("Checks per minute", "rate(hbt_monitor_checks_total[5m]) * 60", "short"),
            (
                "Check duration p95",
                "histogram_quantile(0.95, sum by (le) (rate(hbt_monitor_check_duration_seconds_bucket[5m])))",
                "s",
            ),
        ],
    ),
    "t1-deploy": (
        "RESONTINEX T1 release guard",
        [
            ("Window ΔnDCG@10 vs T0", "t1_window_delta_ndcg", "short"),
            ("Quality CUSUM", "t1_quality_cusum", "short"),
            ("Window p95 latency", "t1_window_p95_latency_seconds", "s"),
            ("Window Jaccard@10", "t1_window_jaccard_at10_ratio", "percentunit"),
            ("AECE drift", "t1_aece_drift_ratio", "short"),
            (
                "Rollbacks by trigger",
                "sum by (trigger) (increase(t1_rollbacks_total[1h]))",
                "short",
            ),
        ],
    ),
}


def dashboard(uid: str, title: str, panels: list[tuple[str, str, str]]) -> dict[str, object]:
    return {
        "uid": uid,
        "title": title,
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "tags": ["resontinex"],
        "templating": {"list": []},
        "panels": [
            {
                "id": i + 1,
                "type": "timeseries",
                "title": panel_title,
                "datasource": {"type": "prometheus", "uid": "prometheus"},
                "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "targets": [
                    {
                        "refId": "A",
                        "expr": expr,
                        "datasource": {"type": "prometheus", "uid": "prometheus"},
                    }
                ],
            }
            for i, (panel_title, expr, unit) in enumerate(panels)
        ],
    }


def render() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {
        f"{uid}.json": json.dumps(dashboard(uid, title, panels), indent=2, ensure_ascii=False)
        + "\n"
        for uid, (title, panels) in DASHBOARDS.items()
    }


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
