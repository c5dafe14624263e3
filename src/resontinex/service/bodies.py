"""Request and response bodies of the service: strict types, and every bound the service enforces.

Strict mode: ``"yes"`` and ``0`` are not booleans, ``"0.5"`` is not a number, ``2.5`` is not an
integer. ``2.0`` is: JSON Schema (2020-12, validation §6.1.1) counts a number with a zero
fractional part as an integer, so a server whose schema says ``integer`` must accept it (and
schemathesis checks that it does). Bounds and enums are the ones the members enforce, so the
schema tells a client everything that can get a 422 before it sends anything.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

from fusion_ops.governance import MAX_COST
from resontinex.pipeline.core import MAX_NEW_TOKENS, MAX_PROMPT_CHARS

MAX_BATCH_ROWS = 10_000
# The scoring endpoint teacher-forces prompt + response through the local model; its context
# (2,048 positions) holds about this many characters of either.
MAX_SCORE_CHARS = 2_000


def _integral(value: Any) -> Any:
    """A JSON number with a zero fractional part is an integer (JSON Schema); others stay as sent."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        return int(value)
    return value


JsonInt = Annotated[int, BeforeValidator(_integral)]
Unit = Field(ge=0, le=1, allow_inf_nan=False)
Identity = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._@:+-]+$")


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class TrustSignals(Body):
    alignment_score: float = Unit
    epistemic_risk: float = Unit
    confidence_band: float = Unit


UnitFloat = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class TrustBatch(Body):
    """Rows of ``[alignment_score, epistemic_risk, confidence_band]``, evaluated in one
    vectorised pass (rows, not columns, so no valid body can have columns of unequal length)."""

    rows: list[Annotated[list[UnitFloat], Field(min_length=3, max_length=3)]] = Field(
        min_length=1, max_length=MAX_BATCH_ROWS
    )


class ScoreBody(Body):
    prompt: str = Field(min_length=1, max_length=MAX_SCORE_CHARS)
    response: str = Field(min_length=1, max_length=MAX_SCORE_CHARS)


class BudgetPeriodBody(Body):
    period: str = Field(min_length=1, max_length=200)
    budget: float | None = Field(default=None, gt=0, le=MAX_COST, allow_inf_nan=False)


def break_glass_body(max_ttl_seconds: float) -> type[Body]:
    """The break-glass body, with the deployment's configured ceiling of ``ttl_seconds``."""
    return create_model(
        "BreakGlassBody",
        __base__=TrustSignals,
        override_reason=(str, Field(min_length=1, max_length=2000)),
        operator_id=(str, Identity),
        ttl_seconds=(
            float | None,
            Field(default=None, gt=0, le=max_ttl_seconds, allow_inf_nan=False),
        ),
    )


def routed_bodies(categories: tuple[str, ...]) -> tuple[type[Body], type[Body]]:
    """The pipeline and route bodies, with ``category`` an enum of the router's categories."""
    category: Any = Literal[categories]
    pipeline = create_model(
        "PipelineBody",
        __base__=Body,
        prompt=(str, Field(min_length=1, max_length=MAX_PROMPT_CHARS)),
        category=(category, "service_management"),
        complexity=(float, Field(default=0.5, ge=0, le=1, allow_inf_nan=False)),
        max_new_tokens=(JsonInt, Field(default=48, ge=1, le=MAX_NEW_TOKENS)),
        emergency=(
            bool,
            Field(default=False, description="needs the bearer token and an `approver`"),
        ),
        approver=(
            str | None,
            Field(
                default=None,
                min_length=1,
                max_length=200,
                pattern=r"^[A-Za-z0-9._@:+-]+$",
                description="who authorised emergency spending; recorded in the audit record",
            ),
        ),
    )
    route = create_model(
        "RouteBody",
        __base__=Body,
        category=(category, ...),
        complexity=(float, Field(ge=0, le=1, allow_inf_nan=False)),
        description=(str, Field(default="", max_length=MAX_PROMPT_CHARS)),
    )
    return pipeline, route
