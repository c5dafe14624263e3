"""Energy and budget governance, CI budget gates and the runtime micro-overlay prompt router."""

from fusion_ops.__about__ import __version__

__all__ = ["__version__"]
