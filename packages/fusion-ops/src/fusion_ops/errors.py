"""Every error fusion-ops raises derives from :class:`FusionOpsError`.

Subclasses say what went wrong; messages name the offending field and value so a caller can fix
the input without reading the source.
"""

from __future__ import annotations


class FusionOpsError(Exception):
    """Base class of every fusion-ops error."""


class InvalidInputError(FusionOpsError, ValueError):
    """A caller passed a value of the wrong type, out of range, NaN/inf, empty or too large."""


class ConfigError(FusionOpsError):
    """A configuration file or mapping is missing, malformed or fails validation."""


class ReportError(FusionOpsError):
    """A budget report is missing, unreadable or does not follow the report schema."""


class BackendError(FusionOpsError):
    """A completion backend failed to produce a completion."""


class BackendRequestError(BackendError):
    """The request itself is wrong (HTTP 400/401/403/404, bad model, no credentials).

    Repeating it cannot succeed, so a collection run stops at the first one instead of recording
    every run as a failed sample.
    """


class BackendLoadError(InvalidInputError):
    """A ``module:Class`` backend spec cannot be imported, built or does not fit the protocol."""


class SpendCapReachedError(FusionOpsError):
    """The next request could cost more than what is left of the collection run's spend cap."""


class CollectionAbortedError(FusionOpsError):
    """A collection run stopped early; ``partial`` holds what was measured before it stopped."""

    def __init__(self, message: str, partial: object | None = None) -> None:
        super().__init__(message)
        self.partial = partial


class IngestError(InvalidInputError):
    """A usage log line or span is malformed; the message names file, line and field."""


class ScenarioError(InvalidInputError):
    """A routing scenario is malformed (unknown category, complexity outside [0, 1], ...)."""


class UnknownCategoryError(ScenarioError):
    """A scenario names a category the routing rules do not know."""


class OverlayNotFoundError(FusionOpsError, KeyError):
    """An overlay name is not among the overlays the router loaded."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class BudgetDeniedError(FusionOpsError):
    """The energy governor refused a request; ``reason`` is a stable machine-readable code."""

    reason = "denied"


class ReviewRequiredError(BudgetDeniedError):
    """Utilisation is above the auto-review threshold and the request carries no reviewer."""

    reason = "review_required"


class ApprovalRequiredError(BudgetDeniedError):
    """A single request costs more than the approval threshold and has no valid approval token."""

    reason = "approval_required"


class EmergencyBrakeError(BudgetDeniedError):
    """The emergency brake is engaged: only emergency work may proceed."""

    reason = "emergency_brake"


class BudgetExhaustedError(BudgetDeniedError):
    """The request would spend more than what is left of the period budget."""

    reason = "budget_exhausted"


class ReservationError(FusionOpsError):
    """A reservation id is unknown or was already settled."""


class StateCorruptedError(FusionOpsError):
    """A persisted state file could not be parsed; it was moved aside (see ``moved_to``)."""

    def __init__(self, message: str, moved_to: str) -> None:
        super().__init__(message)
        self.moved_to = moved_to


class StoreError(FusionOpsError):
    """A state store (ledger or tripwire latch) cannot be opened or used; nothing was admitted."""


class StoreUnavailableError(StoreError):
    """The store cannot be reached: unreachable URL, refused credentials, locked or lost
    connection. Messages never contain the password."""


class StoreSchemaError(StoreError):
    """The store holds a schema this version cannot use (newer version, foreign or missing)."""


class StoreCorruptedError(StoreError):
    """The store's file is not a readable database; it is left untouched for an operator."""
