"""Version of the cert-trajectory distribution (the one place it is kept)."""

__version__ = "0.1.0"
