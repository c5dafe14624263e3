"""Holographic Behavioral Twin: hyperdimensional behavioural fingerprints of models, drift detection, signed audit log, edge export."""

from hbt_core.__about__ import __version__

__all__ = ["__version__"]
