"""Management API v1 bodies for sessions (logs, exec, shell) and the remote-access policy."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from signalbeam.server.api.management.v1.field_rules import DURATION as DURATION_TEXT
from signalbeam.server.api.management.v1.field_rules import Duration
from signalbeam.server.api.management.v1.schemas import Body

UnitName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9@._:-]+$")]
DURATION = DURATION_TEXT
# The route refuses a put without the file's size and sha256.
PUT_STATES_ITS_FILE: dict[str, Any] = {
    "anyOf": [
        {"properties": {"direction": {"const": "get"}}},
        {
            "required": ["size", "sha256"],
            "properties": {"size": {"type": "integer"}, "sha256": {"type": "string"}},
        },
    ]
}
# A command to run, or a terminal: the route refuses a request with neither.
COMMAND_OR_TTY: dict[str, Any] = {
    "anyOf": [
        {"required": ["command"], "properties": {"command": {"minItems": 1}}},
        {"required": ["tty"], "properties": {"tty": {"const": True}}},
    ]
}


class LogsRequest(Body):
    """Which logs to show: no unit lists the units the device can show."""

    unit: UnitName | None = Field(default=None, examples=["monitor", "agent"])
    tail: int = Field(default=200, ge=0, le=100_000, description="lines of history first")
    since: Duration | None = Field(default=None, description=DURATION)
    grep: str | None = Field(default=None, min_length=1, max_length=500, description="a regex")
    follow: StrictBool = Field(default=False, description="keep sending new lines until closed")


class ExecRequest(Body):
    """A command to run on the device's host or inside one of its units."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=COMMAND_OR_TTY)

    command: list[Annotated[str, Field(max_length=4096)]] = Field(
        default=[], max_length=256, description="argv; empty with tty=true opens a login shell"
    )
    unit: UnitName | None = None
    timeout: Duration | None = Field(default=None, description=DURATION)
    tty: StrictBool = Field(default=False, description="a terminal (an interactive shell)")
    rows: int = Field(default=24, ge=1, le=1000)
    cols: int = Field(default=80, ge=1, le=1000)


class CopyRequest(Body):
    """A file to put on the device or get from it; a put states its size and sha256 first."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=PUT_STATES_ITS_FILE)

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

    enabled: StrictBool
    # Rules are stored stripped, so one must hold more than whitespace; `check_allow_rules` checks
    # it (a pattern for the schema only: pydantic's regex engine has another idea of whitespace).
    exec_allow: list[
        Annotated[str, Field(min_length=1, max_length=500, json_schema_extra={"pattern": r"\S"})]
    ] = Field(default=[], max_length=200, examples=[["uptime", "systemctl status *"]])
