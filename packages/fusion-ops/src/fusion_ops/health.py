"""Framework-free payloads for ``/fusion/health`` and ``/fusion/budget/status``.

Both return plain JSON-serialisable dicts; the umbrella serves them over HTTP. ``status`` is
``ok``, ``degraded`` (serving, but something needs attention: skipped overlays, review-level
utilisation, a latched downgrade) or ``critical`` (emergency brake engaged or no overlay loaded).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fusion_ops.__about__ import __version__
from fusion_ops.governance import EnergyGovernor
from fusion_ops.runtime_router import RuntimeRouter
from fusion_ops.tripwire import BudgetTripwire

__all__ = ["budget_status_payload", "health_payload"]

_ORDER = {"ok": 0, "degraded": 1, "critical": 2}


def _worst(statuses: list[str]) -> str:
    return max(statuses, key=_ORDER.__getitem__, default="ok")


def _governor_status(governor: EnergyGovernor) -> tuple[str, dict[str, Any]]:
    snap = governor.snapshot()
    status = "critical" if snap.brake_engaged else "degraded" if snap.review_required else "ok"
    return status, snap.to_dict()


def _tripwire_status(tripwire: BudgetTripwire) -> tuple[str, dict[str, Any]]:
    state = tripwire.state()
    return ("degraded" if state.downgraded else "ok"), state.to_json()


def budget_status_payload(
    governor: EnergyGovernor, tripwire: BudgetTripwire | None = None
) -> dict[str, Any]:
    """Ledger snapshot, limits and (optionally) the tripwire state."""
    status, ledger = _governor_status(governor)
    limits = governor.config.budget_limits
    payload: dict[str, Any] = {
        "status": status,
        "ledger": ledger,
        "limits": {
            "hard_limit_percentage": limits.hard_limit_percentage,
            "auto_review_threshold": limits.auto_review_threshold,
            "approval_threshold": limits.approval_threshold,
        },
        "checked_at": dt.datetime.now(dt.timezone.utc).isoformat(),
    }
    if tripwire is not None:
        trip_status, state = _tripwire_status(tripwire)
        payload["tripwire"] = state
        payload["status"] = _worst([status, trip_status])
    return payload


def health_payload(
    *,
    governor: EnergyGovernor | None = None,
    router: RuntimeRouter | None = None,
    tripwire: BudgetTripwire | None = None,
) -> dict[str, Any]:
    """Overall status plus one entry per component passed in."""
    components: dict[str, dict[str, Any]] = {}
    if governor is not None:
        status, ledger = _governor_status(governor)
        components["governor"] = {
            "status": status,
            "utilisation": ledger["utilisation"],
            "period": ledger["period"],
        }
    if router is not None:
        info = router.health()
        if not info["overlays_loaded"]:
            info["status"] = "critical"
        components["router"] = info
    if tripwire is not None:
        status, state = _tripwire_status(tripwire)
        components["tripwire"] = {
            "status": status,
            "downgraded": state["downgraded"],
            "downgrade_reason": state["downgrade_reason"],
        }
    return {
        "status": _worst([c["status"] for c in components.values()]),
        "version": __version__,
        "components": components,
        "checked_at": dt.datetime.now(dt.timezone.utc).isoformat(),
    }
