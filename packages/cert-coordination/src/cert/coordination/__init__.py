"""Resilient Anthropic client, multi-agent orchestration, LLM-as-judge and coordination metrics."""

from cert.coordination.__about__ import __version__

__all__ = ["__version__"]
