"""Prometheus metrics, always registered on a registry the caller passes in.

Names are snake_case with unit suffixes. Nothing here touches the global default registry:
components take ``registry=None`` (no metrics) or a ``CollectorRegistry``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["GovernorMetrics", "RouterMetrics", "TripwireMetrics"]


class GovernorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "fusion_budget_requests_total",
            "Budget requests by outcome (admitted or the denial reason).",
            ["outcome"],
            registry=registry,
        )
        self.committed_units = Counter(
            "fusion_budget_committed_units_total",
            "Energy units committed (actually spent).",
            registry=registry,
        )
        self.utilisation = Gauge(
            "fusion_budget_utilisation_ratio",
            "Committed plus reserved units over the period budget.",
            registry=registry,
        )
        self.alerts = Gauge(
            "fusion_budget_alert_active",
            "1 while an alert level has fired in the current period.",
            ["level"],
            registry=registry,
        )
        self.cache_lookups = Counter(
            "fusion_insight_cache_lookups_total",
            "Insight cache lookups by result (hit, miss, expired).",
            ["result"],
            registry=registry,
        )


class TripwireMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.runs = Counter(
            "fusion_tripwire_runs_total",
            "Runs recorded by the budget tripwire, by result (breach or clean).",
            ["result"],
            registry=registry,
        )
        self.downgraded = Gauge(
            "fusion_tripwire_downgraded",
            "1 while the downgrade is latched.",
            registry=registry,
        )
        self.corruptions = Counter(
            "fusion_tripwire_state_corruptions_total",
            "Corrupt tripwire state files moved aside.",
            registry=registry,
        )


class RouterMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.decisions = Counter(
            "fusion_router_decisions_total",
            "Routing decisions by selected overlay ('none' when abstained).",
            ["overlay"],
            registry=registry,
        )
        self.load_failures = Counter(
            "fusion_router_overlay_load_failures_total",
            "Overlay files skipped at load time, by reason code.",
            ["reason"],
            registry=registry,
        )
        self.overlays_loaded = Gauge(
            "fusion_router_overlays_loaded",
            "Overlays currently served by the router.",
            registry=registry,
        )
