"""RFC 9457 problem+json for every error, mapped from domain errors in this one place."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from signalbeam.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    Malformed,
    NotFound,
    Unauthenticated,
)
from signalbeam.server.api.method_not_allowed import allow_header

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"

STATUS = {
    InvalidInput: 422,
    Malformed: 400,
    NotFound: 404,
    Conflict: 409,
    Unauthenticated: 401,
    Forbidden: 403,
}


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    field: str | None = None,
    errors: Sequence[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A problem+json response; `field` and `errors` name what to fix."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if field is not None:
        body["field"] = field
    if errors:
        body["errors"] = list(errors)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_path(loc: Sequence[int | str]) -> str:
    parts = list(loc[1:]) if loc and loc[0] in ("body", "query", "path", "header") else list(loc)
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or str(loc[0] if loc else "body")


def _message(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return "unknown field: remove it or check its spelling"
    if kind == "missing":
        return "required"
    if kind == "string_pattern_mismatch":
        pattern = str(error.get("ctx", {}).get("pattern", ""))
        rule = pattern if len(pattern) <= 80 else "its pattern in /api/openapi.json"
        return f"{error.get('input')!r} is not valid here: it must match {rule}"
    if kind == "json_invalid":
        return f"body is not valid JSON ({error.get('ctx', {}).get('error', 'parse error')})"
    return str(error.get("msg", "invalid value")).removeprefix("Value error, ")


def validation_problem(raw: Sequence[Any]) -> JSONResponse:
    """400 for JSON that does not parse, else 422 naming every invalid field."""
    errors = [{"field": _field_path(e["loc"]), "message": _message(e)} for e in raw]
    if any(e["type"] == "json_invalid" for e in raw):
        return problem(
            400, "Malformed JSON", errors[0]["message"] + "; send a JSON object", field="body"
        )
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem(422, "Invalid input", detail, field=errors[0]["field"], errors=errors)


def domain_problem(exc: DomainError) -> JSONResponse:
    """The status and wording a domain error stands for."""
    status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 400)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return problem(status, exc.title, exc.detail, field=exc.field, headers=headers)


async def _validation(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return validation_problem(exc.errors())


async def _domain(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    return domain_problem(exc)


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        detail = f"no such endpoint: {request.method} {request.url.path}; see /api/openapi.json"
        return problem(404, "Not found", detail)
    if exc.status_code == 405:
        headers = allow_header(request)
        detail = f"{request.method} is not allowed on {request.url.path}; use {headers['Allow']}"
        return problem(405, "Method not allowed", detail, headers=headers)
    return http_problem(exc)


def http_problem(exc: StarletteHTTPException) -> JSONResponse:
    """An HTTP-level refusal (a body too large, say) as problem+json."""
    if exc.status_code == 413:
        return problem(413, "Request body too large", str(exc.detail), field="body")
    return problem(exc.status_code, "Request failed", str(exc.detail))


async def _unexpected(_request: Request, exc: Exception) -> Response:
    return unexpected_problem(exc)


def unexpected_problem(exc: Exception) -> JSONResponse:
    """A 500 with a reference to the logged traceback; the traceback never reaches the client."""
    reference = uuid.uuid4().hex[:12]
    log.error("unhandled error (reference %s)", reference, exc_info=exc)
    return problem(
        500,
        "Internal error",
        f"the server failed to handle this request (reference {reference}); "
        "the server log has the details",
    )


def install(app: FastAPI) -> None:
    """Register the problem+json handlers on an app."""
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(DomainError, _domain)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
