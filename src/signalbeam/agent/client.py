"""The device API over httpx; every failure becomes `ServerUnavailable` or `Rejected`."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any, TypeVar

import httpx
import msgspec

from signalbeam import __version__
from signalbeam.agent import wire
from signalbeam.agent.tls import verify_for
from signalbeam.agent.wire import (
    EnrollRequest,
    EnrollResponse,
    SyncRequest,
    SyncResponse,
    TelemetryAck,
    TelemetryBatch,
    WatchResponse,
)

M = TypeVar("M", bound=msgspec.Struct)
USER_AGENT = f"signalbeam-agent/{__version__}"
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
REQUEST_SECONDS = 30.0
# A long-poll may be held for its full timeout; allow for a slow network on top of that.
WATCH_GRACE_SECONDS = 15.0
PERMANENT = (401, 403)
RETRYABLE = (408, 425, 429)
# A connect that has not completed in this long is given up and tried afresh: SYNs lost while
# a link was down are retransmitted ever later (1 s, 3 s, 7 s), a new connect starts at once.
CONNECT_SECONDS = 4.0


class ServerUnavailable(Exception):
    """No usable answer: unreachable, timed out, 5xx, or a body that is not what we asked for."""

    def __init__(
        self, detail: str, retry_after: float | None = None, *, unreachable: bool = False
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after
        # True when no answer came at all (refused, unroutable, timed out), as opposed to a
        # server that answered with an error: only the latter is a reason to back off.
        self.unreachable = unreachable


class BadResponse(ServerUnavailable):
    """The server answered, but with something the agent cannot use (wrong shape, too big)."""


class Rejected(Exception):
    """The server refused the request; `permanent` when retrying can never help (401, 403)."""

    def __init__(self, detail: str, status: int, *, permanent: bool) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.permanent = permanent


def one_line(text: str, limit: int = 300) -> str:
    """Text from the server made safe for one log line: no control characters, bounded."""
    cleaned = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def _retry_after(response: httpx.Response) -> float | None:
    try:
        value = float(response.headers.get("retry-after", ""))
    except ValueError:
        return None
    return value if 0 <= value <= 3600 else None


def problem_detail(status: int, body: bytes) -> str:
    """The `detail` of a problem+json body, or a description of what came instead."""
    try:
        data: Any = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("detail"), str):
        return f"HTTP {status}: {one_line(data['detail'])}"
    return f"HTTP {status} without a problem detail ({len(body)} bytes)"


def without_failure_log(request: SyncRequest) -> SyncRequest:
    """`request` minus the failing unit and its lines, for a server that predates them."""
    reported = request.reported
    if reported.failed_unit is None and not reported.failure_log:
        return request
    plain = msgspec.structs.replace(reported, failed_unit=None, failure_log=[])
    return msgspec.structs.replace(request, reported=plain)


def _shape_error(what: str, err: msgspec.DecodeError) -> BadResponse:
    if not isinstance(err, msgspec.ValidationError):
        return BadResponse(f"{what}: the answer is not JSON")
    where, problem = wire.where(err)
    return BadResponse(
        f"{what}: the answer has the wrong shape ({where or 'body'}: {one_line(problem, 120)})"
    )


async def _read_limited(response: httpx.Response, limit: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BadResponse(f"the answer is too large ({int(declared)} bytes, limit {limit})")
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            raise BadResponse(f"the answer is too large (more than {limit} bytes)")
    return bytes(body)


def _causes(err: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _transport_reason(err: Exception) -> str:
    """What went wrong on the wire, in the words of the innermost cause."""
    if isinstance(err, httpx.TimeoutException):
        return "timed out"
    for cause in _causes(err):
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return f"host not found: {cause.strerror or cause}"
        if isinstance(cause, OSError) and cause.errno is not None and cause.strerror:
            return cause.strerror.lower()
    text = one_line(str(err), 200)
    return text or type(err).__name__


class DeviceClient:
    """One device's connection to the control plane (keep-alive, bounded, never hangs)."""

    def __init__(
        self,
        server: str,
        credential: str | None = None,
        *,
        request_seconds: float = REQUEST_SECONDS,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self.server = server.rstrip("/")
        self._credential = credential
        self._request_seconds = request_seconds
        self._max_bytes = max_response_bytes
        self._plain_reports = False
        self._http = httpx.AsyncClient(
            base_url=self.server,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            timeout=httpx.Timeout(10.0, read=request_seconds),
            limits=httpx.Limits(max_connections=4, max_keepalive_connections=2),
            follow_redirects=False,
            verify=verify_for(self.server),
        )

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def enroll(self, request: EnrollRequest) -> EnrollResponse:
        """Enroll with an enrollment token; the answer holds the credential (shown once)."""
        return await self._call("POST", "/api/device/v1/enroll", EnrollResponse, body=request)

    async def sync(self, request: SyncRequest) -> SyncResponse:
        """Heartbeat, facts and reported state out; desired state and hints back."""
        if self._plain_reports:
            request = without_failure_log(request)
        try:
            return await self._call("POST", "/api/device/v1/sync", SyncResponse, body=request)
        except Rejected as err:
            plain = without_failure_log(request)
            if err.status != 422 or plain is request:
                raise
        # A server older than failure logs refuses fields it does not know. It still gets
        # the reason; once it takes the report without them, they are left out from now on.
        answer = await self._call("POST", "/api/device/v1/sync", SyncResponse, body=plain)
        self._plain_reports = True
        return answer

    async def telemetry(self, batch: TelemetryBatch) -> TelemetryAck:
        """Deliver queued samples and events; the ack says what may be deleted."""
        return await self._call("POST", "/api/device/v1/telemetry", TelemetryAck, body=batch)

    async def watch(self, generation: int, timeout: float) -> WatchResponse:
        """Long-poll until the desired generation passes `generation`, or `timeout` seconds."""
        # with_desired: a `changed` answer brings the new desired state along (one round trip).
        # with_sessions: an operator's session request answers the watch at once, naming it.
        params = {
            "generation": str(generation),
            "timeout": f"{timeout:g}",
            "with_desired": "true",
            "with_sessions": "true",
        }
        return await self._call(
            "GET",
            "/api/device/v1/watch",
            WatchResponse,
            params=params,
            seconds=timeout + WATCH_GRACE_SECONDS,
        )

    async def _call(
        self,
        method: str,
        path: str,
        model: type[M],
        *,
        body: msgspec.Struct | None = None,
        params: dict[str, str] | None = None,
        seconds: float | None = None,
    ) -> M:
        deadline = seconds or self._request_seconds
        what = f"{method} {path}"
        try:
            async with asyncio.timeout(deadline):
                status, data, retry = await self._exchange(method, path, body, params, deadline)
        except TimeoutError as err:
            detail = f"{what}: no complete answer within {deadline:g} s"
            raise ServerUnavailable(detail, unreachable=True) from err
        except BadResponse as err:
            raise BadResponse(f"{what}: {err.detail}") from err
        except (httpx.HTTPError, httpx.InvalidURL, OSError) as err:
            reason = _transport_reason(err)
            detail = f"{what}: cannot reach {self.server} ({reason})"
            raise ServerUnavailable(detail, unreachable=True) from err
        return self._interpret(what, model, status, data, retry)

    async def _exchange(
        self,
        method: str,
        path: str,
        body: msgspec.Struct | None,
        params: dict[str, str] | None,
        deadline: float,
    ) -> tuple[int, bytes, float | None]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if self._credential:
            headers["Authorization"] = f"Bearer {self._credential}"
        content = wire.encode(body) if body is not None else None
        timeout = httpx.Timeout(CONNECT_SECONDS, read=deadline)
        request = self._http.build_request(
            method, path, content=content, params=params, headers=headers, timeout=timeout
        )
        response = await self._http.send(request, stream=True)
        try:
            data = await _read_limited(response, self._max_bytes)
        finally:
            await response.aclose()
        return response.status_code, data, _retry_after(response)

    def _interpret(
        self, what: str, model: type[M], status: int, data: bytes, retry: float | None
    ) -> M:
        if 200 <= status < 300:
            try:
                # Unknown fields in answers are ignored (see `wire.Received`).
                return wire.decode(data, model)
            except msgspec.DecodeError as err:
                raise _shape_error(what, err) from err
        detail = f"{what}: {problem_detail(status, data)}"
        if status in PERMANENT:
            raise Rejected(detail, status, permanent=True)
        if status >= 500 or status in RETRYABLE:
            raise ServerUnavailable(detail, retry_after=retry)
        if 300 <= status < 400:
            raise BadResponse(f"{what}: unexpected redirect (HTTP {status}); check the server URL")
        raise Rejected(detail, status, permanent=False)
