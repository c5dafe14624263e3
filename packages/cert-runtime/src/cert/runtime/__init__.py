"""Shared CERT infrastructure: errors, retry, circuit breaker, health, structured logging, metrics, config."""

from cert.runtime.__about__ import __version__

__all__ = ["__version__"]
