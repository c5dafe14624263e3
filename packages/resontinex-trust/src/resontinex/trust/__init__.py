"""CompositeTrustGate: logit-aggregated trust score, risk tiers, decisions, calibration, monitor and break-glass."""

from resontinex.trust.__about__ import __version__

__all__ = ["__version__"]
