"""Version of the umbrella distribution `resontinex` (the one place it is kept)."""

__version__ = "0.1.0"
