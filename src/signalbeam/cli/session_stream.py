"""The operator's end of a session: asking for it, then its WebSocket of output and input.

The wire contract is protocol/sessions.py. This module knows nothing about terminals or
which command asked; it turns frames into calls and every way a stream ends into an Ending.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import ClientConnection, connect

from signalbeam.cli.client import USER_AGENT, Api
from signalbeam.cli.config import Credentials
from signalbeam.cli.output import CliError
from signalbeam.protocol.sessions import (
    CLOSE_SERVER_RESTARTING,
    EXIT_CONNECTION_LOST,
    MAX_FRAME_BYTES,
    STDIN,
    FrameError,
    control,
    frame,
    read_control,
    unframe,
)

# The server waits 10 s for the device before it answers; leave room for a slow link.
STARTED_SECONDS = 30.0
# What a stream's `error` detail says when the link, not the command, failed.
LOST_MARKERS = (" lost", "restart")
Output = Callable[[int, bytes], None]


@dataclass(frozen=True)
class Ending:
    """How a session ended: the exit status to use, and the error to print, if any."""

    code: int
    error: str | None = None


def ask(api: Api, device_id: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """Ask the server for a session (`logs` or `exec`); the 201 body with the stream's path."""
    created: dict[str, Any] = api.post(f"/api/v1/devices/{quote(device_id, safe='')}:{kind}", body)
    return created


def stream_url(server: str, path: str) -> str:
    """The WebSocket URL of `path` on `server` (ws:// for http, wss:// for https)."""
    if server.startswith("https://"):
        return "wss://" + server.removeprefix("https://") + path
    return "ws://" + server.removeprefix("http://") + path


def exit_status(code: int) -> int:
    """A remote exit code as a local one: killed by signal N (negative) is 128+N, as in sh."""
    return 128 - code if code < 0 else min(code, 255)


def error_code(detail: str) -> int:
    """255 when the detail says the link was lost or the control plane restarted, else 1."""
    return EXIT_CONNECTION_LOST if any(m in detail for m in LOST_MARKERS) else 1


class SessionStream:
    """One open session stream; `send_*` may be called from another thread than `read`."""

    def __init__(self, connection: ClientConnection, server: str) -> None:
        self.connection = connection
        self.server = server
        # The `exit` or `error` message that ended the stream (a copy's exit names its sha256).
        self.final: dict[str, Any] = {}

    def send_stdin(self, data: bytes) -> None:
        """Send bytes to the remote command's stdin."""
        self.connection.send(frame(STDIN, data))

    def send_eof(self) -> None:
        """Tell the device no more stdin is coming."""
        self.connection.send(control("eof"))

    def send_resize(self, rows: int, cols: int) -> None:
        """Tell the device the terminal's new size."""
        self.connection.send(control("resize", rows=rows, cols=cols))

    def close(self) -> None:
        """End the session; the device stops the command when its socket closes."""
        self.connection.close()

    def wait_started(self) -> None:
        """Return once the device has the request, or raise CliError saying why it has not."""
        try:
            message = self.connection.recv(timeout=STARTED_SECONDS)
        except TimeoutError as err:
            raise CliError(
                f"the server did not start the session within {STARTED_SECONDS:g} s"
            ) from err
        except ConnectionClosed:
            ending = self._closed()
            raise CliError(ending.error or "the session ended", ending.code) from None
        if isinstance(message, bytes):
            raise CliError("the server sent output before saying the session started")
        first = _control(message)
        if first["type"] == "error":
            detail = str(first.get("detail") or "the server refused the session")
            raise CliError(detail, error_code(detail))

    def read(self, output: Output) -> Ending:
        """Hand every output frame to `output` until the session ends; how it ended."""
        while True:
            try:
                message = self.connection.recv()
            except ConnectionClosed:
                return self._closed()
            if isinstance(message, bytes):
                output(*_unframe(message))
                continue
            self.final = _control(message)
            ending = _ending(self.final)
            if ending is not None:
                return ending

    def _closed(self) -> Ending:
        # Closed without `exit` or `error`: the control plane went away under us.
        if self.connection.close_code == CLOSE_SERVER_RESTARTING:
            return Ending(EXIT_CONNECTION_LOST, "the control plane restarted; the session ended")
        return Ending(EXIT_CONNECTION_LOST, f"connection to the server at {self.server} lost")


def open_stream(credentials: Credentials, created: dict[str, Any]) -> SessionStream:
    """Open the operator's WebSocket of a session the server just created."""
    url = stream_url(credentials.server, str(created["stream"]))
    headers = {"Authorization": f"Bearer {credentials.token}"}
    # The same certificate checks as the CLI's HTTP client (certifi, or SSL_CERT_FILE/DIR).
    tls = httpx.create_ssl_context() if url.startswith("wss://") else None
    try:
        connection = connect(
            url,
            additional_headers=headers,
            user_agent_header=USER_AGENT,
            ssl=tls,
            max_size=MAX_FRAME_BYTES,
            open_timeout=10,
        )
    except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as err:
        raise CliError(
            f"cannot open the session stream at {url} ({err or type(err).__name__})"
        ) from err
    return SessionStream(connection, credentials.server)


def _unframe(message: bytes) -> tuple[int, bytes]:
    try:
        return unframe(message)
    except FrameError as err:
        raise CliError(f"the server sent a broken frame: {err}") from err


def _control(message: str) -> dict[str, Any]:
    try:
        return read_control(message)
    except FrameError as err:
        raise CliError(f"the server sent a broken frame: {err}") from err


def _ending(message: dict[str, Any]) -> Ending | None:
    if message["type"] == "exit":
        code = message.get("code")
        return Ending(exit_status(code) if isinstance(code, int) else EXIT_CONNECTION_LOST)
    if message["type"] == "error":
        detail = str(message.get("detail") or "the session ended with an error")
        return Ending(error_code(detail), detail)
    return None
