"""Per-token perplexity and entropy monitor for transformers language models."""

from cert.trajectory.__about__ import __version__

__all__ = ["__version__"]
