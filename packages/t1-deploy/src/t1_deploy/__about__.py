"""Version of the t1-deploy distribution (the one place it is kept)."""

__version__ = "0.1.0"
