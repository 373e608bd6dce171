"""The one HTTP client every command uses; it turns every failure into a readable ApiError."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import httpx

from signalbeam import __version__
from signalbeam.cli import config
from signalbeam.cli.output import CliError

USER_AGENT = f"signalbeam-cli/{__version__}"
# Reads wait longer than the server's 15 s keep-alive so a quiet event stream is not cut.
TIMEOUT = httpx.Timeout(10.0, read=45.0)
# The server hashes and syncs a large upload to disk before it answers.
UPLOAD_TIMEOUT = httpx.Timeout(60.0, read=600.0)

Params = Mapping[str, str | int | list[str] | None]


class ApiError(CliError):
    """The management API could not be used; `message` says why and what to do."""


class Unreachable(ApiError):
    """No HTTP answer at all: refused, timed out, cut off, name not found."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class ProblemError(ApiError):
    """The server answered with an error status (problem+json, normally)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _reason(err: httpx.TransportError) -> str:
    text = str(err)
    if isinstance(err, httpx.TimeoutException):
        return "timed out"
    if "refused" in text.lower():
        return "connection refused"
    if "name or service not known" in text.lower() or "nodename nor servname" in text.lower():
        return "host not found"
    return text or type(err).__name__


def unreachable(server: str, err: httpx.TransportError) -> Unreachable:
    """The error for a server that gave no HTTP answer."""
    reason = _reason(err)
    return Unreachable(
        f"cannot reach the SignalBeam server at {server} ({reason}); "
        "is it running? (signalbeam server)",
        reason,
    )


def _detail(body: Any) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("detail"), str):
        return None
    detail: str = body["detail"]
    field = body.get("field")
    # Most details already start with the field they are about; repeating it adds noise.
    if isinstance(field, str) and field and not detail.startswith(field):
        return f"{detail} (field: {field})"
    return detail


def problem(server: str, response: httpx.Response) -> ProblemError:
    """The error for a non-2xx answer: the problem's detail, or what the server sent instead."""
    try:
        detail = _detail(response.json())
    except ValueError:
        detail = None
    if detail is None:
        request = response.request
        detail = (
            f"the server at {server} answered {response.status_code} {response.reason_phrase} "
            f"to {request.method} {request.url.path}; is this a SignalBeam server?"
        )
    return ProblemError(detail, response.status_code)


def _clean(params: Params | None) -> dict[str, str | int | list[str]]:
    return {key: value for key, value in (params or {}).items() if value not in (None, [])}


class Api:
    """The management API at one server, as one user; use it as a context manager."""

    def __init__(self, server: str, token: str | None = None) -> None:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.server = server
        self._http = httpx.Client(base_url=server, headers=headers, timeout=TIMEOUT)

    def __enter__(self) -> Api:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._http.close()

    def request(
        self, method: str, path: str, *, params: Params | None = None, body: Any = None
    ) -> Any:
        """Send one request and return the decoded JSON answer (None for 204)."""
        try:
            response = self._http.request(method, path, params=_clean(params), json=body)
        except httpx.TransportError as err:
            raise unreachable(self.server, err) from err
        if not response.is_success:
            raise problem(self.server, response)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as err:
            raise ApiError(
                f"the server at {self.server} did not answer with JSON; "
                "is this a SignalBeam server?"
            ) from err

    def get(self, path: str, params: Params | None = None) -> Any:
        """GET a resource."""
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any = None) -> Any:
        """POST a JSON body."""
        return self.request("POST", path, body=body)

    def patch(self, path: str, body: Any) -> Any:
        """PATCH with a JSON body."""
        return self.request("PATCH", path, body=body)

    def put(self, path: str, body: Any) -> Any:
        """PUT a JSON body."""
        return self.request("PUT", path, body=body)

    def delete(self, path: str) -> Any:
        """DELETE a resource."""
        return self.request("DELETE", path)

    def upload(self, path: str, content: Iterable[bytes], headers: Mapping[str, str]) -> Any:
        """PUT a body streamed from `content`, never held whole; the decoded JSON answer."""
        try:
            response = self._http.put(
                path, content=content, headers=dict(headers), timeout=UPLOAD_TIMEOUT
            )
        except httpx.TransportError as err:
            raise unreachable(self.server, err) from err
        if not response.is_success:
            raise problem(self.server, response)
        return response.json()

    @contextmanager
    def stream(
        self,
        path: str,
        params: Params | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        method: str = "GET",
        body: Any = None,
    ) -> Iterator[httpx.Response]:
        """Open a streaming request; error statuses raise ProblemError before any line is read."""
        try:
            with self._http.stream(
                method, path, params=_clean(params), headers=dict(headers or {}), json=body
            ) as response:
                if not response.is_success:
                    response.read()
                    raise problem(self.server, response)
                yield response
        except httpx.TransportError as err:
            raise unreachable(self.server, err) from err


def connect() -> Api:
    """A client for the logged-in server, or a CliError telling how to log in."""
    credentials = config.resolve()
    return Api(credentials.server, credentials.token)
