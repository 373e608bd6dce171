"""Management API v1 bodies for sessions (logs, exec, shell) and the remote-access policy."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from signalbeam.server.api.management.v1.schemas import Body

UnitName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9@._:-]+$")]
DURATION = "a duration such as 30s, 10m or 1h"


class LogsRequest(Body):
    """Which logs to show: no unit lists the units the device can show."""

    unit: UnitName | None = Field(default=None, examples=["monitor", "agent"])
    tail: int = Field(default=200, ge=0, le=100_000, description="lines of history first")
    since: str | None = Field(default=None, max_length=32, description=DURATION)
    grep: str | None = Field(default=None, min_length=1, max_length=500, description="a regex")
    follow: bool = Field(default=False, description="keep sending new lines until closed")


class ExecRequest(Body):
    """A command to run on the device's host or inside one of its units."""

    command: list[Annotated[str, Field(max_length=4096)]] = Field(
        default=[], max_length=256, description="argv; empty with tty=true opens a login shell"
    )
    unit: UnitName | None = None
    timeout: str | None = Field(default=None, max_length=32, description=DURATION)
    tty: bool = Field(default=False, description="a terminal (an interactive shell)")
    rows: int = Field(default=24, ge=1, le=1000)
    cols: int = Field(default=80, ge=1, le=1000)


class CopyRequest(Body):
    """A file to put on the device or get from it; a put states its size and sha256 first."""

    path: str = Field(min_length=2, max_length=4096, pattern=r"^/", examples=["/etc/kiosk.conf"])
    direction: Literal["put", "get"]
    size: int | None = Field(default=None, ge=0, description="bytes of a put")
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$", description="of a put")


class ForwardRequest(Body):
    """One TCP connection from the operator to a port the device can reach."""

    host: str = Field(default="127.0.0.1", min_length=1, max_length=253)
    port: int = Field(ge=1, le=65535, examples=[80])


class SessionPublic(BaseModel):
    """An offered session: open `stream` as a WebSocket with the same API token."""

    session: str
    kind: Literal["logs", "exec", "shell", "copy", "forward"]
    device_id: str
    stream: str = Field(description="path of the operator's WebSocket for this session")
    expires_in_seconds: float = Field(description="attach within this long")


class RemoteAccessPublic(BaseModel):
    """The tenant's remote-access switch and exec allow-list."""

    enabled: bool
    exec_allow: list[str] = Field(description="command patterns; empty allows any command")


class RemoteAccessUpdate(Body):
    """Turn remote exec/shell on or off for the tenant, optionally limited to some commands."""

    enabled: bool
    exec_allow: list[Annotated[str, Field(min_length=1, max_length=500)]] = Field(
        default=[], max_length=200, examples=[["uptime", "systemctl status *"]]
    )
