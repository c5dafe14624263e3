"""The governed pipeline: one request through every RESONTINEX member (see ``core``)."""

from resontinex.pipeline.backends import (
    ChatGenerationBackend,
    Generation,
    GenerationBackend,
    LocalChatBackend,
    LocalModel,
    LocalModelBackend,
)
from resontinex.pipeline.core import GovernedPipeline, PipelineRequest, PipelineResult, StageRecord
from resontinex.pipeline.drift import DriftSettings, DriftWatch
from resontinex.pipeline.errors import PipelineConfigError, PipelineError, PipelineInputError
from resontinex.pipeline.factory import PipelineSettings, build_pipeline
from resontinex.pipeline.signals import MonitoredSignals, SignalMapping, to_input_vector
from resontinex.pipeline.worker import ModelWorker, WorkerClosedError, WorkerLogitModel

__all__ = [
    "ChatGenerationBackend",
    "DriftSettings",
    "DriftWatch",
    "Generation",
    "GenerationBackend",
    "GovernedPipeline",
    "LocalChatBackend",
    "LocalModel",
    "LocalModelBackend",
    "ModelWorker",
    "MonitoredSignals",
    "PipelineConfigError",
    "PipelineError",
    "PipelineInputError",
    "PipelineRequest",
    "PipelineResult",
    "PipelineSettings",
    "SignalMapping",
    "StageRecord",
    "WorkerClosedError",
    "WorkerLogitModel",
    "build_pipeline",
    "to_input_vector",
]
