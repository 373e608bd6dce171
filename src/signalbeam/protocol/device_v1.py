"""Device API v1: what agents send and what the control plane answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

DeviceIdStr = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
]
Percent = Annotated[float, Field(ge=0, le=100)]
# A failed update's report carries at most this much of the failing unit's output
# (50 lines of 320 characters: under 16 KiB, so a report stays small).
FAILURE_LOG_LINES = 50
FAILURE_LOG_LINE_CHARS = 320


class WireModel(BaseModel):
    """Strict wire model: unknown fields are errors, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid")


class Facts(WireModel):
    """What a device is; reported at enrollment and on every sync."""

    hostname: str = Field(default="", max_length=255)
    os: str = Field(default="", max_length=255)
    arch: str = Field(default="", max_length=64)
    kernel: str = Field(default="", max_length=255)
    agent_version: str = Field(default="", max_length=64)
    ip_addresses: list[Annotated[str, Field(max_length=64)]] = Field(default=[], max_length=64)
    timezone: str | None = Field(default=None, max_length=64)


class EnrollRequest(WireModel):
    """A device asking to join a tenant with an enrollment token."""

    token: str = Field(min_length=1, max_length=512)
    device_id: DeviceIdStr
    name: str | None = Field(default=None, max_length=200)
    facts: Facts = Facts()
    labels: dict[str, str] = Field(default={}, max_length=64)
    # Chosen by the agent and kept until it has its identity: sending the same one again (the
    # answer was lost) is the same enrollment, not a second use of the token.
    enrollment_id: str | None = Field(default=None, min_length=16, max_length=64)


class EnrollResponse(WireModel):
    """The device's own credential, shown once, and what it needs to talk to the server."""

    device_id: str
    credential: str
    server_keys: list[str] = []
    sync_interval_seconds: float
    rotated: bool
    # The tenant's trust statement and its signatures (protocol/signing.py); devices pin it.
    trust: dict[str, Any] | None = None


class DiskUsage(WireModel):
    """Usage of one mounted filesystem."""

    mount: str = Field(max_length=255)
    percent: Percent


class Heartbeat(WireModel):
    """Health numbers sampled by the agent; every field may be missing on odd hardware."""

    uptime_seconds: float | None = Field(default=None, ge=0)
    cpu_percent: Percent | None = None
    memory_percent: Percent | None = None
    disks: list[DiskUsage] = Field(default=[], max_length=64)
    load1: float | None = Field(default=None, ge=0)
    load5: float | None = Field(default=None, ge=0)
    load15: float | None = Field(default=None, ge=0)
    temperature_celsius: float | None = Field(default=None, ge=-100, le=200)
    net_bytes_sent: int | None = Field(default=None, ge=0)
    net_bytes_recv: int | None = Field(default=None, ge=0)
    sampled_at: datetime | None = None
    # /proc/sys/kernel/random/boot_id: a new one means the device rebooted (a reboot action
    # is done only once it changes). Older agents leave it out.
    boot_id: str | None = Field(default=None, min_length=1, max_length=64)


class ReportedItem(BaseModel):
    """One container or app as the agent sees it; extra keys are kept for newer agents."""

    model_config = ConfigDict(extra="allow")

    kind: str = Field(max_length=16)
    name: str = Field(max_length=128)
    state: str = Field(max_length=32)
    healthy: bool | None = None
    since: datetime | None = None
    exit_code: int | None = None
    restart_count: int = Field(default=0, ge=0)
    image: str | None = Field(default=None, max_length=500)
    image_digest: str | None = Field(default=None, max_length=200)
    artifact_sha256: str | None = Field(default=None, max_length=64)
    bundle: str | None = Field(default=None, max_length=200)
    last_error: str | None = Field(default=None, max_length=2000)
    # How it replaced the copy before it (`start-first`, `stop-first`); None: a first start.
    update_order: str | None = Field(default=None, max_length=16)


class ReportedConfig(WireModel):
    """Which config the device applied (protocol/config_v1.py), or why it could not.

    `applying`: `digest` is being applied now. `applied`: `digest` is what the units run
    with. `failed`: `digest` is what the agent tried, `reason` says why, and the units run
    with the config applied before it.
    """

    digest: str | None = Field(default=None, max_length=200)
    status: Literal["applying", "applied", "failed"]
    reason: str | None = Field(default=None, max_length=2000)


class ReportedState(WireModel):
    """What the agent says is actually running.

    `generation` is the desired generation this report answers. `status` is one of
    `ApplyStatus` (idle, applying, running, degraded, failed); `reason` says why when it is not
    `running`. `bundle`, `version` and `digest` name what runs now, which after an automatic
    rollback is the last good version rather than the desired one.
    """

    generation: int = Field(default=0, ge=0)
    status: str = Field(default="idle", max_length=32)
    reason: str | None = Field(default=None, max_length=2000)
    bundle: str | None = Field(default=None, max_length=200)
    version: str | None = Field(default=None, max_length=200)
    digest: str | None = Field(default=None, max_length=200)
    retryable: bool = Field(default=False, description="the failure may pass if tried again")
    items: list[ReportedItem] = Field(default=[], max_length=256)
    # With a `failed` status caused by one unit (its health check failed, it exited while
    # starting): that unit's name and the last lines it wrote, taken before the rollback
    # removed it, so the first look at a failure needs no `signalbeam logs`.
    failed_unit: str | None = Field(default=None, max_length=128)
    failure_log: list[Annotated[str, Field(max_length=FAILURE_LOG_LINE_CHARS)]] = Field(
        default=[], max_length=FAILURE_LOG_LINES
    )
    # The device's config; None when it has none (and from agents older than config).
    config: ReportedConfig | None = None


class SyncRequest(WireModel):
    """Heartbeat, facts and reported state in one request."""

    heartbeat: Heartbeat = Heartbeat()
    facts: Facts | None = None
    reported: ReportedState = ReportedState()
    known_generation: int = Field(default=-1, ge=-1)
    # The heartbeat's outbox sequence number, sent once the server says it deduplicates them
    # (`ServerHints.heartbeat_seq`). The server stores it only past the device's telemetry mark
    # and moves the mark, so the same sample sent again through /telemetry (the answer was
    # lost) is not stored twice.
    heartbeat_seq: int | None = Field(default=None, ge=1)
    # True when older samples still wait in the outbox: the heartbeat then only updates the
    # latest metrics, and the sample itself arrives through /telemetry, in order.
    heartbeat_queued: bool = False


class DesiredState(WireModel):
    """What the device should run, versioned by a monotonically increasing generation."""

    generation: int
    spec: dict[str, Any] = {}


class ServerHints(WireModel):
    """How the server would like the agent to behave."""

    sync_interval_seconds: float
    heartbeat_seq: bool = False  # the server takes SyncRequest.heartbeat_seq


class SyncResponse(WireModel):
    """The desired state, or `unchanged` when the agent already holds this generation."""

    status: Literal["changed", "unchanged"]
    generation: int
    desired: DesiredState | None
    hints: ServerHints
    server_time: datetime


AgentEventType = Annotated[str, StringConstraints(pattern=r"^agent\.[a-z0-9_.]{1,57}$")]


class AgentEvent(WireModel):
    """Something the agent wants in the activity log; `seq` makes redelivery harmless."""

    seq: int = Field(ge=1)
    type: AgentEventType
    message: str = Field(max_length=2000)
    data: dict[str, Any] = {}
    occurred_at: datetime


class QueuedSample(WireModel):
    """A heartbeat the agent could not deliver by sync at the time it was taken."""

    seq: int = Field(ge=1)
    heartbeat: Heartbeat


class TelemetryBatch(WireModel):
    """Outbox contents, oldest first; the server stores each seq at most once."""

    samples: list[QueuedSample] = Field(default=[], max_length=1000)
    events: list[AgentEvent] = Field(default=[], max_length=1000)
    dropped_samples: int = Field(default=0, ge=0, description="samples dropped since last report")


class TelemetryAck(WireModel):
    """The highest sequence numbers now stored: the agent may delete up to these."""

    samples_through: int
    events_through: int


class WatchResponse(WireModel):
    """Answer to a long-poll: `changed` as soon as the desired generation passes the one held."""

    status: Literal["changed", "unchanged"]
    generation: int
    # Only when the agent asked with `with_desired=true`: the new desired state itself, so a
    # change reaches the device in one round trip (earlier agents did not ask).
    desired: DesiredState | None = None
    # Only when the agent asked with `with_sessions=true`: sessions offered to this device
    # (protocol/sessions.py); the agent connects `GET /api/device/v1/sessions/{id}` for each.
    sessions: list[str] | None = None
