"""Typed errors of t1-deploy: one base class, subclasses that name what went wrong."""

from __future__ import annotations


class T1DeployError(Exception):
    """Base of every error raised on purpose by t1-deploy."""


class InvalidInputError(T1DeployError, ValueError):
    """A caller passed a value of the wrong type, shape or range (the message names the field)."""


class ConfigError(InvalidInputError):
    """A configuration object or file holds an invalid value."""


class DatasetError(T1DeployError):
    """The reference data set could not be built (too few pairs, empty split, ...)."""


class ArtifactError(T1DeployError):
    """An exported artifact is malformed, fails its schema or its checksum."""


class NotFittedError(T1DeployError):
    """A component was used before `fit`/`optimize` produced its state."""


class FormatError(InvalidInputError):
    """An input file is malformed; the message names the file and the line."""
