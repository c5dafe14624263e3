"""Errors of cert-trajectory: one base class, subclasses that say what went wrong.

Each subclass also derives from the matching cert-runtime error, so callers that handle the
shared CERT hierarchy (retry policies, circuit breakers, HTTP mapping) treat them correctly.
"""

from __future__ import annotations

from cert.runtime.errors import (
    AnalysisError,
    CERTError,
    GPUOutOfMemoryError,
    InvalidInputError,
    ResourceLoadError,
)

__all__ = [
    "ConfigError",
    "DeviceOutOfMemoryError",
    "GenerationError",
    "InvalidPromptError",
    "ModelLoadError",
    "ModelNotLoadedError",
    "OutputDirectoryError",
    "TrajectoryError",
]


class TrajectoryError(CERTError):
    """Base of every error raised by cert-trajectory."""


class InvalidPromptError(TrajectoryError, InvalidInputError):
    """A prompt or response is empty, of the wrong type, or longer than configured."""


class ConfigError(TrajectoryError, InvalidInputError):
    """A TrajectoryConfig field is of the wrong type, out of range, or can never trigger."""


class ModelLoadError(TrajectoryError, ResourceLoadError):
    """The model or tokenizer could not be loaded from the given name or path."""


class ModelNotLoadedError(TrajectoryError):
    """An analysis was requested after unload() or before load() with preload=False."""


class GenerationError(TrajectoryError, AnalysisError):
    """The model produced something unusable (NaN logits, a failed forward pass)."""


class DeviceOutOfMemoryError(TrajectoryError, GPUOutOfMemoryError):
    """The accelerator ran out of memory and the CPU fallback is disabled or failed too."""


class OutputDirectoryError(TrajectoryError, InvalidInputError):
    """An output path holds data this package did not write; it is refused, never replaced."""
