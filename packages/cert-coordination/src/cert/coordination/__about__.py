"""Version of the cert-coordination distribution (the one place it is kept)."""

__version__ = "0.1.0"
