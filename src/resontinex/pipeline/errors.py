"""Errors of the governed pipeline; members' own errors pass through unchanged."""

from __future__ import annotations


class PipelineError(Exception):
    """Base of every error the umbrella's pipeline raises itself."""


class PipelineConfigError(PipelineError, ValueError):
    """A pipeline setting is missing or invalid; the message names the key and the value."""


class PipelineInputError(PipelineError, ValueError):
    """A request is malformed; the message names the field and the value."""
