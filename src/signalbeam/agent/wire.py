"""Device API v1 as the agent speaks it: msgspec structs mirroring `protocol.device_v1`.

The server keeps the pydantic models (they make its OpenAPI document and its validation
errors); the agent uses these, because pydantic alone costs a small device about 10 MB of
memory. `tests/agent/test_wire_contract.py` holds the two definitions together: same field
names, same required fields and defaults, and the same documents accepted and refused.

Messages the agent sends (and keeps in its outbox and state files) refuse unknown fields,
as the server does. Answers it receives ignore them, so a newer server may add fields
without breaking older agents. Decoding is lax, like pydantic's default (`"5"` is read as an
integer where one is expected), and a struct built in code is only checked when it goes
through `checked`, which is done wherever pydantic used to check on construction.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import Meta, field

T = TypeVar("T")


def text(max_length: int, min_length: int = 0, pattern: str | None = None) -> Meta:
    """A length-bounded string; `pattern`, when given, must match the whole of it."""
    return Meta(min_length=min_length, max_length=max_length, pattern=pattern)


# Pydantic matches `$` only at the very end (Rust regex); Python's `$` also matches before a
# final newline, so the agent's patterns end in `\Z` to refuse exactly what the server does.
DeviceIdStr = Annotated[str, text(128, 1, r"^[A-Za-z0-9][A-Za-z0-9._:-]*\Z")]
Percent = Annotated[float, Meta(ge=0, le=100)]
NonNegative = Annotated[float, Meta(ge=0)]
AgentEventType = Annotated[str, Meta(pattern=r"^agent\.[a-z0-9_.]{1,57}\Z")]


class Sent(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A message the agent sends: unknown fields are errors, as on the server."""


class Received(msgspec.Struct, kw_only=True):
    """An answer the agent receives: fields a newer server adds are ignored."""


class Facts(Sent, kw_only=True):
    """What a device is; reported at enrollment and on every sync."""

    hostname: Annotated[str, text(255)] = ""
    os: Annotated[str, text(255)] = ""
    arch: Annotated[str, text(64)] = ""
    kernel: Annotated[str, text(255)] = ""
    agent_version: Annotated[str, text(64)] = ""
    ip_addresses: Annotated[list[Annotated[str, text(64)]], Meta(max_length=64)] = []
    timezone: Annotated[str, text(64)] | None = None


class EnrollRequest(Sent, kw_only=True, omit_defaults=True):
    """A device asking to join a tenant with an enrollment token (defaults left out)."""

    token: Annotated[str, text(512, 1)]
    device_id: DeviceIdStr
    name: Annotated[str, text(200)] | None = None
    facts: Facts = field(default_factory=Facts)
    labels: Annotated[dict[str, str], Meta(max_length=64)] = {}
    enrollment_id: Annotated[str, text(64, 16)] | None = None


class EnrollResponse(Received, kw_only=True):
    """The device's own credential, shown once, and what it needs to talk to the server."""

    device_id: str
    credential: str
    server_keys: list[str] = []
    sync_interval_seconds: float
    rotated: bool
    trust: dict[str, Any] | None = None


class DiskUsage(Sent, kw_only=True):
    """Usage of one mounted filesystem."""

    mount: Annotated[str, text(255)]
    percent: Percent


class Heartbeat(Sent, kw_only=True):
    """Health numbers sampled by the agent; every field may be missing on odd hardware."""

    uptime_seconds: NonNegative | None = None
    cpu_percent: Percent | None = None
    memory_percent: Percent | None = None
    disks: Annotated[list[DiskUsage], Meta(max_length=64)] = []
    load1: NonNegative | None = None
    load5: NonNegative | None = None
    load15: NonNegative | None = None
    temperature_celsius: Annotated[float, Meta(ge=-100, le=200)] | None = None
    net_bytes_sent: Annotated[int, Meta(ge=0)] | None = None
    net_bytes_recv: Annotated[int, Meta(ge=0)] | None = None
    sampled_at: datetime | None = None
    boot_id: Annotated[str, text(64, 1)] | None = None


class ReportedItem(msgspec.Struct, kw_only=True):
    """One container or app as the agent sees it.

    The server keeps keys it does not know (for newer agents); this agent never sends any,
    and ignores them when it reads a status file a newer agent wrote.
    """

    kind: Annotated[str, text(16)]
    name: Annotated[str, text(128)]
    state: Annotated[str, text(32)]
    healthy: bool | None = None
    since: datetime | None = None
    exit_code: int | None = None
    restart_count: Annotated[int, Meta(ge=0)] = 0
    image: Annotated[str, text(500)] | None = None
    image_digest: Annotated[str, text(200)] | None = None
    artifact_sha256: Annotated[str, text(64)] | None = None
    bundle: Annotated[str, text(200)] | None = None
    last_error: Annotated[str, text(2000)] | None = None
    # How it replaced the copy before it (`start-first`, `stop-first`); None: a first start.
    update_order: Annotated[str, text(16)] | None = None


FAILURE_LOG_LINES = 50
FAILURE_LOG_LINE_CHARS = 320


class ReportedConfig(Sent, kw_only=True, omit_defaults=True):
    """Which config the device applied, or why not (see `protocol.device_v1.ReportedConfig`)."""

    digest: Annotated[str, text(200)] | None = None
    status: Literal["applying", "applied", "failed"]
    reason: Annotated[str, text(2000)] | None = None


class ReportedState(Sent, kw_only=True, omit_defaults=True):
    """What the agent says is actually running (see `protocol.device_v1.ReportedState`).

    Fields at their defaults are left out of what is sent: a server that predates
    `failed_unit` and `failure_log` refuses fields it does not know, and a report without a
    failure log then reads to it exactly as before.
    """

    generation: Annotated[int, Meta(ge=0)] = 0
    status: Annotated[str, text(32)] = "idle"
    reason: Annotated[str, text(2000)] | None = None
    bundle: Annotated[str, text(200)] | None = None
    version: Annotated[str, text(200)] | None = None
    digest: Annotated[str, text(200)] | None = None
    retryable: bool = False
    items: Annotated[list[ReportedItem], Meta(max_length=256)] = []
    failed_unit: Annotated[str, text(128)] | None = None
    failure_log: Annotated[
        list[Annotated[str, text(FAILURE_LOG_LINE_CHARS)]], Meta(max_length=FAILURE_LOG_LINES)
    ] = []
    # Left out while None, so a server older than config still takes the report.
    config: ReportedConfig | None = None


class SyncRequest(Sent, kw_only=True, omit_defaults=True):
    """Heartbeat, facts and reported state in one request.

    Fields at their defaults are left out, so a server older than `heartbeat_seq` still
    takes a request that does not use it.
    """

    heartbeat: Heartbeat = field(default_factory=Heartbeat)
    facts: Facts | None = None
    reported: ReportedState = field(default_factory=ReportedState)
    known_generation: Annotated[int, Meta(ge=-1)] = -1
    heartbeat_seq: Annotated[int, Meta(ge=1)] | None = None
    heartbeat_queued: bool = False


class DesiredState(Received, kw_only=True):
    """What the device should run, versioned by a monotonically increasing generation."""

    generation: int
    spec: dict[str, Any] = {}


class ServerHints(Received, kw_only=True):
    """How the server would like the agent to behave."""

    sync_interval_seconds: float
    heartbeat_seq: bool = False


class SyncResponse(Received, kw_only=True):
    """The desired state, or `unchanged` when the agent already holds this generation."""

    status: Literal["changed", "unchanged"]
    generation: int
    desired: DesiredState | None
    hints: ServerHints
    server_time: datetime


class AgentEvent(Sent, kw_only=True):
    """Something the agent wants in the activity log; `seq` makes redelivery harmless."""

    seq: Annotated[int, Meta(ge=1)]
    type: AgentEventType
    message: Annotated[str, text(2000)]
    data: dict[str, Any] = {}
    occurred_at: datetime


class QueuedSample(Sent, kw_only=True):
    """A heartbeat the agent could not deliver by sync at the time it was taken."""

    seq: Annotated[int, Meta(ge=1)]
    heartbeat: Heartbeat


class TelemetryBatch(Sent, kw_only=True):
    """Outbox contents, oldest first; the server stores each seq at most once."""

    samples: Annotated[list[QueuedSample], Meta(max_length=1000)] = []
    events: Annotated[list[AgentEvent], Meta(max_length=1000)] = []
    dropped_samples: Annotated[int, Meta(ge=0)] = 0


class TelemetryAck(Received, kw_only=True):
    """The highest sequence numbers now stored: the agent may delete up to these."""

    samples_through: int
    events_through: int


class WatchResponse(Received, kw_only=True):
    """Answer to a long-poll: `changed` as soon as the desired generation passes the one held."""

    status: Literal["changed", "unchanged"]
    generation: int
    desired: DesiredState | None = None
    # Sessions offered to this device (protocol/sessions.py); null when none.
    sessions: list[str] | None = None


_encoder = msgspec.json.Encoder()


def encode(value: Any) -> bytes:
    """JSON bytes of a message (or any value made of messages and builtins)."""
    return _encoder.encode(value)


def decode(data: bytes | str, kind: type[T]) -> T:
    """Decode JSON into `kind`, as laxly as pydantic would; raises `msgspec.DecodeError`."""
    return msgspec.json.decode(data, type=kind, strict=False)


def convert(value: Any, kind: type[T]) -> T:
    """Like `decode`, from already decoded JSON (a dict read from a state file)."""
    return msgspec.convert(value, kind, strict=False)


def to_json(value: Any) -> Any:
    """A message as plain JSON values (datetimes as RFC 3339 text), for the state files."""
    return msgspec.to_builtins(value)


def checked(message: T) -> T:
    """`message` after the constraints a decoder applies; raises `msgspec.ValidationError`.

    Structs built in code are not checked; this is for values that came from sensors or
    drivers, which must never turn into a request the server refuses.
    """
    return msgspec.json.decode(_encoder.encode(message), type=type(message))


_AT = re.compile(r"^(?P<message>.*) - at `(?P<key>key` in `)?\$(?P<path>[^`]*)`$", re.DOTALL)


def where(err: msgspec.ValidationError) -> tuple[str, str]:
    """The dotted path of the first problem (`""` for the whole document) and what it is."""
    found = _AT.match(str(err))
    if found is None:
        return "", str(err)
    path = found["path"].removeprefix(".")
    return (f"{path} (a key)" if found["key"] else path), found["message"]
