"""Version of the resontinex-trust distribution (the one place it is kept)."""

__version__ = "0.1.0"
