"""Errors of the governed pipeline; members' own errors pass through unchanged."""

from __future__ import annotations


class PipelineError(Exception):
    """Base of every error the umbrella's pipeline raises itself."""


class PipelineConfigError(PipelineError, ValueError):
    """A pipeline setting is missing or invalid; the message names the key and the value."""


class PipelineInputError(PipelineError, ValueError):
    """A request is malformed; the message names the field and the value."""


class StateStoreError(PipelineError):
    """A store of the umbrella (the drift latch) cannot be used; the message names it."""


class StateUnavailableError(StateStoreError):
    """The database cannot be reached, refused the credentials, or failed mid-operation."""


class StateFormatError(StateStoreError):
    """Not this store: a foreign or corrupt file or database, or a newer schema version."""
