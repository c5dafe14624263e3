"""Release governance for a search ranker: router distillation, confounding audit, gating, latency harvest, release contract, monitoring, sustainment."""

from t1_deploy.__about__ import __version__

__all__ = ["__version__"]
