"""The problem+json responses the API can give, declared once for the OpenAPI document.

Every API route shares these declarations (the routers are included with them), so a
generated client knows that any error arrives as `application/problem+json` with the
`Problem` schema below, whatever the route.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from signalbeam.server.api.problems import PROBLEM_JSON

COMPONENTS = "#/components/schemas/"


class FieldProblem(BaseModel):
    """One invalid value and what to do about it."""

    field: str = Field(description="where it is: a body path such as `containers[0].image`")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details: every API error is answered with this body."""

    type: str = Field(default="about:blank", description="always about:blank: see `title`")
    title: str = Field(description="the kind of problem, such as `Invalid input`")
    status: int = Field(ge=400, le=599, description="the HTTP status, repeated")
    detail: str = Field(description="what went wrong and what to do next, for a person")
    field: str | None = Field(default=None, description="the request field to fix, if one")
    errors: list[FieldProblem] | None = Field(
        default=None, description="every invalid field of a 422, when there are several"
    )


# What each status means on this API, whichever route gives it.
MEANINGS: dict[int, str] = {
    400: "the request could not be decoded (malformed JSON or YAML, a cut-off upload)",
    401: "no valid credential: send `Authorization: Bearer <token>`",
    403: "the credential is valid but its role or token does not allow this",
    404: "something the path, query or body names does not exist in your tenant",
    409: "the request clashes with the current state (a duplicate name, an immutable version)",
    413: "the request body is larger than the server accepts",
    415: "the body's Content-Type is not one this operation reads",
    416: "the Range cannot be served; Content-Range says the size",
    422: "a value is not acceptable; `field` and `errors` name each one",
    500: "the server failed; `detail` has a reference to its log",
}
# Statuses any API route can answer; a route adds others (415, 416) where it gives them.
COMMON = (400, 401, 403, 404, 409, 413, 422, 500)


def problem_response(status: int, description: str | None = None) -> dict[str, Any]:
    """One problem+json response declaration, in FastAPI's `responses=` form."""
    return {
        "description": description or MEANINGS[status],
        "content": {PROBLEM_JSON: {"schema": {"$ref": COMPONENTS + "Problem"}}},
    }


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Declarations for these statuses, for a route's or a router's `responses=`."""
    return {status: problem_response(status) for status in statuses}


API_PROBLEMS = problem_responses(*COMMON)
