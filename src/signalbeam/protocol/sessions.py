"""Sessions: an operator's live connection to one device, relayed by the control plane.

Pure and free of pydantic, because the agent imports it too. The flow:

1. The operator asks: `POST /api/v1/devices/{device_id}:logs` or `:exec` (management API).
   The server checks roles, the tenant's policy and presence, and answers 201 with the
   session id and the operator's stream path.
2. The server offers the session to the device on its held watch: a `WatchResponse` with
   `sessions: [id, ...]` (only to agents that asked with `with_sessions=true`).
3. The agent opens `GET /api/device/v1/sessions/{id}` as a WebSocket (outbound, device
   credential in `Authorization: Bearer ...`). The operator opens
   `GET /api/v1/sessions/{id}/stream` as a WebSocket with their API token.
4. Once both are there, the server sends the device one `open` message (text frame, JSON,
   `open_message` below) and tells the operator `started`. From then on it relays frames both
   ways unchanged, one at a time, so a side that stops reading slows the other (backpressure).

Frames after `open`:
- binary: one byte naming the stream (`STDIN`, `STDOUT`, `STDERR`), then raw bytes;
- text: a JSON object with a `type`:
  - `resize` {rows, cols}: operator -> device, for a terminal;
  - `eof` {}: operator -> device, no more stdin;
  - `exit` {code}: device -> operator, the remote command ended with this code; the last frame;
  - `error` {detail}: device or server -> operator, the session could not run or broke; the
    last frame. `detail` is one line a person can act on (it names who refused and how to
    change it);
  - `started` {session}: server -> operator, the device is connected and has the request.
"""

from __future__ import annotations

import json
from typing import Any, Final

# What an operator can open. `shell` is `exec` with a terminal.
LOGS: Final = "logs"
EXEC: Final = "exec"
SHELL: Final = "shell"
# `copy`: a file to (`put`) or from (`get`) the device; `forward`: one TCP connection to a
# port the device can reach, its bytes as stdin (to the port) and stdout (from it).
COPY: Final = "copy"
FORWARD: Final = "forward"
# `action`: a device action (services/actions.py) that the server itself opens; no operator
# streams it. The open frame names the `action` (and the `unit` to restart); the device
# answers `exit` {code: 0, detail} once done (for the agent and reboot: once it is about to
# happen) or `error` {detail}.
ACTION: Final = "action"
KINDS: Final = (LOGS, EXEC, SHELL, COPY, FORWARD, ACTION)
# Kinds that reach into the device: off until the tenant and the device both allow them.
# Actions are not among them: restarting what the control plane runs is the operator's job.
REMOTE_ACCESS_KINDS: Final = (EXEC, SHELL, COPY, FORWARD)
RESTART: Final = "restart"
RESTART_AGENT: Final = "restart-agent"
REBOOT: Final = "reboot"
DEVICE_ACTIONS: Final = (RESTART, RESTART_AGENT, REBOOT)
PUT: Final = "put"
GET: Final = "get"

STDIN: Final = 0
STDOUT: Final = 1
STDERR: Final = 2
STREAMS: Final = (STDIN, STDOUT, STDERR)

# The CLI's exit status when the device or the server went away mid-session (as ssh does).
EXIT_CONNECTION_LOST: Final = 255
# The largest binary frame either side sends; bigger output is split.
MAX_CHUNK_BYTES: Final = 64 * 1024
# The largest frame the server accepts from either side.
MAX_FRAME_BYTES: Final = MAX_CHUNK_BYTES + 1024
# The log unit that is the agent's own log (beside bundle units and allowed host units).
AGENT_UNIT: Final = "agent"

# WebSocket close codes (4000-4999 are the application's).
CLOSE_DONE: Final = 1000
CLOSE_SERVER_RESTARTING: Final = 1012
CLOSE_REFUSED: Final = 4403
CLOSE_NOT_FOUND: Final = 4404
CLOSE_TIMEOUT: Final = 4408


class FrameError(ValueError):
    """A frame that is not what the protocol says; the session ends with this reason."""


def frame(stream: int, data: bytes) -> bytes:
    """A binary frame carrying `data` on `stream`."""
    if stream not in STREAMS:
        raise FrameError(f"unknown stream {stream}; streams are {STREAMS}")
    return bytes((stream,)) + data


def unframe(message: bytes) -> tuple[int, bytes]:
    """The stream and the bytes of a binary frame."""
    if not message or message[0] not in STREAMS:
        raise FrameError(
            "a binary frame must start with a stream byte (0 stdin, 1 stdout, 2 stderr)"
        )
    return message[0], message[1:]


def control(type_: str, **fields: Any) -> str:
    """A text frame: a control message of this type."""
    return json.dumps({"type": type_, **fields}, separators=(",", ":"))


def read_control(text: str) -> dict[str, Any]:
    """A control message from a text frame, or FrameError saying what is wrong."""
    try:
        message = json.loads(text)
    except ValueError as err:
        raise FrameError(f"a text frame must be a JSON object: {err}") from err
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise FrameError('a text frame must be a JSON object with a "type"')
    return message


def open_message(
    session: str,
    kind: str,
    *,
    actor: str,
    unit: str | None = None,
    command: list[str] | None = None,
    timeout_seconds: float | None = None,
    tty: bool = False,
    rows: int = 24,
    cols: int = 80,
    tail: int | None = None,
    since_seconds: float | None = None,
    grep: str | None = None,
    follow: bool = False,
    path: str | None = None,
    direction: str | None = None,
    size: int | None = None,
    sha256: str | None = None,
    host: str | None = None,
    port: int | None = None,
    action: str | None = None,
) -> str:
    """The first frame the device gets: what to run or show, and who asked.

    `unit` None means the host (exec) or "list the units you can show" (logs).
    `timeout_seconds` None means no limit (the idle timeout still applies).
    `since_seconds` is how far back logs go, relative to the device's clock.
    A `copy` names the device's `path` and the `direction`; a `put` also says the file's
    `size` and `sha256`, which the device checks before it renames the file into place (a
    `get` ends with `exit` {code: 0, sha256, size} so the operator can check what arrived).
    A `forward` names the `host` and `port` the device connects to. An `action` names the
    `action` (one of DEVICE_ACTIONS) and, for a restart, the `unit`.
    """
    if kind not in KINDS:
        raise FrameError(f"unknown session kind {kind!r}; kinds are {', '.join(KINDS)}")
    return control(
        "open",
        session=session,
        kind=kind,
        actor=actor,
        unit=unit,
        command=command or [],
        timeout_seconds=timeout_seconds,
        tty=tty,
        rows=rows,
        cols=cols,
        tail=tail,
        since_seconds=since_seconds,
        grep=grep,
        follow=follow,
        path=path,
        direction=direction,
        size=size,
        sha256=sha256,
        host=host,
        port=port,
        action=action,
    )
