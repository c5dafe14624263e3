"""One error model for every 4xx and 5xx: RFC 9457 problem details (``application/problem+json``).

A problem names the field and the rule that failed, never the submitted value: a secret pasted
into the wrong field must not come back in a response (or in a proxy's log of it). Domain errors
of the members can carry values in their messages, so their text is scrubbed of every string the
caller submitted before it is returned.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from http import HTTPStatus
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel

PROBLEM_MEDIA_TYPE = "application/problem+json"
WITHHELD = "[value withheld]"
_MIN_SCRUBBED = 3  # shorter strings are common words and numbers; scrubbing them garbles messages


class FieldProblem(BaseModel):
    """One failed rule: where (``body.category``) and which rule (``literal_error``, ``required``)."""

    field: str
    rule: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, plus the request id and the field problems."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    request_id: str | None = None
    errors: list[FieldProblem] = []


class ProblemError(Exception):
    """Raised by a route; rendered as a problem response with this status."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: Iterable[FieldProblem] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = list(errors)
        self.headers = dict(headers or {})


def problem_response(
    status: int,
    detail: str,
    *,
    request_id: str | None,
    errors: Iterable[FieldProblem] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = Problem(
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        request_id=request_id,
        errors=list(errors),
    )
    return JSONResponse(
        body.model_dump(), status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE
    )


def submitted_strings(value: Any) -> Iterator[str]:
    """Every string value in a validated body (its keys are the schema's field names)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from submitted_strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from submitted_strings(item)


def scrub(message: str, submitted: Iterable[str]) -> str:
    """``message`` with every submitted string (and its repr) replaced by a placeholder."""
    for value in sorted(set(submitted), key=len, reverse=True):
        if len(value) < _MIN_SCRUBBED:
            continue
        for form in (repr(value), value, repr(value)[1:-1]):
            if len(form) >= _MIN_SCRUBBED:
                message = message.replace(form, WITHHELD)
    return message


def field_problems(errors: Iterable[Mapping[str, Any]]) -> list[FieldProblem]:
    """Pydantic's validation errors as field problems, without the input values.

    An unknown key is itself submitted text, so it is reported as ``body`` with the rule
    ``extra_forbidden`` rather than by name.
    """
    problems = []
    for error in errors:
        rule = str(error.get("type", "invalid"))
        loc = [str(part) for part in error.get("loc", ())]
        if rule == "extra_forbidden":
            loc = loc[:1]
        message = str(error.get("msg", "invalid"))
        given = error.get("input")
        if isinstance(given, str) and len(given) >= _MIN_SCRUBBED and given in message:
            message = message.replace(given, WITHHELD)
        problems.append(FieldProblem(field=".".join(loc) or "body", rule=rule, message=message))
    return problems


_DESCRIPTIONS = {
    400: "Malformed request (not JSON, or not an object where one is expected).",
    401: "A valid bearer token is required.",
    403: "The caller, or this deployment, may not do this.",
    404: "No such resource.",
    409: "The request conflicts with how this deployment is configured.",
    413: "The request body is over the size limit.",
    422: "A field broke a rule; `errors` names each field and rule.",
    503: "Not ready: the pipeline is still starting, or a component is unhealthy.",
}


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries declaring the problem body for each status."""
    ref = {"$ref": "#/components/schemas/Problem"}
    return {
        status: {
            "description": _DESCRIPTIONS[status],
            "content": {PROBLEM_MEDIA_TYPE: {"schema": ref}},
        }
        for status in statuses
    }
