"""Per-token perplexity and entropy monitor for transformers language models.

``HamiltonianMonitor`` is the seed's name for :class:`TrajectoryMonitor`; nothing in it is
Hamiltonian. Signals come from raw logits over the full vocabulary.
"""

from cert.trajectory.__about__ import __version__
from cert.trajectory.config import TrajectoryConfig
from cert.trajectory.errors import (
    ConfigError,
    DeviceOutOfMemoryError,
    GenerationError,
    InvalidPromptError,
    ModelLoadError,
    ModelNotLoadedError,
    OutputDirectoryError,
    TrajectoryError,
)
from cert.trajectory.loading import load_model_for_monitoring
from cert.trajectory.monitor import (
    HamiltonianMonitor,
    ReasoningTrajectoryMonitor,
    TrajectoryMonitor,
)
from cert.trajectory.plot import plot
from cert.trajectory.result import TokenSignal, TrajectoryResult
from cert.trajectory.tiny import TinyModelSpec, build_tiny_model

__all__ = [
    "ConfigError",
    "DeviceOutOfMemoryError",
    "GenerationError",
    "HamiltonianMonitor",
    "InvalidPromptError",
    "ModelLoadError",
    "ModelNotLoadedError",
    "OutputDirectoryError",
    "ReasoningTrajectoryMonitor",
    "TinyModelSpec",
    "TokenSignal",
    "TrajectoryConfig",
    "TrajectoryError",
    "TrajectoryMonitor",
    "TrajectoryResult",
    "__version__",
    "build_tiny_model",
    "load_model_for_monitoring",
    "plot",
]
