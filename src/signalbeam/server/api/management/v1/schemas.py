"""Management API v1 request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from signalbeam.domain.model import Role
from signalbeam.server.api.management.v1.field_rules import (
    DURATION,
    TARGET_RULE,
    Duration,
    GroupName,
    LabelKey,
    Labels,
    NewGroupName,
    Password,
    Selector,
    SelectorOrBlank,
)


class Body(BaseModel):
    """Request bodies refuse unknown fields so typos are reported, not ignored."""

    model_config = ConfigDict(extra="forbid")


class LoginRequest(Body):
    tenant: str = Field(default="default", max_length=63)
    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1024)
    token_name: str = Field(default="cli", max_length=200)


class UserCreate(Body):
    username: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._@+-]+$")
    role: Role = Role.VIEWER
    password: Password | None = Field(default=None, description="none: a generated one")


class PasswordSet(Body):
    password: Password


class UserPublic(BaseModel):
    username: str
    role: Role
    created_at: datetime
    created_by: str
    disabled: bool


class ApiTokenCreate(Body):
    name: str = Field(min_length=1, max_length=200)
    expires_in: Duration | None = Field(default="30d", description=f"{DURATION}; null = never")


class ApiTokenPublic(BaseModel):
    id: int
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked: bool


class ApiTokenCreated(ApiTokenPublic):
    token: str = Field(description="shown once; store it now")


class MePublic(BaseModel):
    username: str
    role: Role
    tenant_id: int


class EnrollmentTokenCreate(Body):
    description: str = Field(default="", max_length=200)
    expires_in: Duration | None = Field(default="24h", description=f"{DURATION}; null = never")
    max_uses: int | None = Field(default=None, ge=1, le=2**31 - 1)
    labels: Labels = {}
    group: GroupName | None = Field(default=None, description="an existing static group")


class EnrollmentTokenPublic(BaseModel):
    id: int
    description: str
    labels: dict[str, str]
    group: str | None
    max_uses: int | None
    uses: int
    expires_at: datetime | None
    created_at: datetime
    created_by: str
    revoked: bool
    usable: bool


class EnrollmentTokenCreated(EnrollmentTokenPublic):
    token: str = Field(description="shown once; store it now")
    install_command: str


class DownloadCounters(BaseModel):
    """Artifact downloads served to one device, as the server saw them."""

    requests: int = Field(default=0, description="artifact requests answered")
    resumed: int = Field(default=0, description="requests for the rest of a blob (a Range past 0)")
    cut: int = Field(default=0, description="answers that ended before every byte was sent")
    bytes_sent: int = Field(default=0, description="bytes handed to the network")


class DevicePublic(BaseModel):
    device_id: str
    name: str
    presence: str
    last_seen_at: datetime | None
    agent_version: str
    labels: dict[str, str]
    metrics: dict[str, Any] | None
    desired_generation: int
    reported_generation: int
    enrolled_at: datetime
    bundle: str | None = Field(description="the bundle the device reports running now")
    bundle_version: str | None = Field(description="its version")
    reported_status: str | None = Field(description="idle, applying, running, degraded, failed")
    cordoned: bool = Field(default=False, description="new rollouts and assignments skip it")
    boot_id: str | None = Field(default=None, description="the boot its agent last reported")
    rebooting_since: datetime | None = Field(
        default=None, description="a reboot was asked for then; null once a new boot id came"
    )
    downloads: DownloadCounters = Field(
        default_factory=DownloadCounters,
        description="artifact downloads the server has served this device",
    )


class DeviceList(BaseModel):
    items: list[DevicePublic]
    total: int
    limit: int
    offset: int


class EventPublic(BaseModel):
    id: int
    type: str
    device_id: str | None
    actor: str
    message: str
    data: dict[str, Any]
    created_at: datetime


class EventList(BaseModel):
    items: list[EventPublic]
    next_before_id: int | None


class DesiredPublic(BaseModel):
    bundle: str | None
    version: str | None
    generation: int


class ReportedItemPublic(BaseModel):
    kind: str
    name: str
    state: str
    healthy: bool | None = None
    since: datetime | None = None
    exit_code: int | None = None
    restart_count: int = 0
    image: str | None = None
    image_digest: str | None = None
    artifact_sha256: str | None = None
    bundle: str | None = None
    last_error: str | None = None
    update_order: str | None = Field(
        default=None,
        description="how it replaced the copy before it: start-first or stop-first "
        "(null when it was a first start)",
    )


class ReportedPublic(BaseModel):
    status: str | None = Field(description="null until the device first reports")
    reason: str | None
    failed_unit: str | None = Field(
        default=None, description="with a failed update: the container or app that failed it"
    )
    failure_log: list[str] = Field(
        default=[], description="the last lines (up to 50) the failed unit wrote, oldest first"
    )
    bundle: str | None = Field(description="what runs now (the last good version after a rollback)")
    version: str | None
    digest: str | None
    generation: int
    items: list[ReportedItemPublic]


class DeviceDetailPublic(DevicePublic):
    facts: dict[str, Any]
    groups: list[str]
    desired: DesiredPublic
    reported: ReportedPublic
    desired_state: dict[str, Any]
    reported_state: dict[str, Any] | None
    credential_rotated_at: datetime
    decommissioned_at: datetime | None
    events: list[EventPublic]


class LabelsPatch(Body):
    set: Labels = {}
    remove: list[LabelKey] = Field(default=[], max_length=64)


class GroupCreate(Body):
    name: NewGroupName
    selector: SelectorOrBlank | None = Field(default=None, description="dynamic when given")
    description: str = Field(default="", max_length=200)


class GroupPublic(BaseModel):
    name: str
    kind: str
    selector: str | None
    description: str
    members: int
    created_at: datetime
    created_by: str


class GroupDetail(GroupPublic):
    devices: list[DevicePublic]


class MembersChange(Body):
    devices: list[str] = Field(min_length=1, max_length=1000)


class MetricPoint(BaseModel):
    ts: datetime
    samples: int
    cpu: float | None
    memory: float | None
    disk: float | None
    load1: float | None
    temperature: float | None
    cpu_max: float | None
    memory_max: float | None
    disk_max: float | None


class MetricSeries(BaseModel):
    device_id: str
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    step_seconds: float
    points: list[MetricPoint]


class DesiredStateSet(Body):
    devices: list[str] = Field(min_length=1, max_length=10_000)
    spec: dict[str, Any] = Field(description="the document agents reconcile to")
    summary: str = Field(default="desired state changed", max_length=200)


class DesiredStateResult(BaseModel):
    generations: dict[str, int]


class BundleVersionPublic(BaseModel):
    name: str
    version: str
    digest: str
    description: str
    created_at: datetime
    created_by: str
    running: int = Field(description="live devices reporting this version running now")
    desired: int = Field(description="live devices whose desired state is this version")


class BundleVersionDetail(BundleVersionPublic):
    spec: dict[str, Any] = Field(description="the canonical bundle document")


class BundlePushed(BaseModel):
    name: str
    version: str
    digest: str
    description: str
    created_at: datetime
    created_by: str
    created: bool = Field(description="false when this exact version was already pushed")


class BundlePublic(BaseModel):
    name: str
    latest_version: str = Field(description="the highest version by semver")
    version_count: int
    running: int = Field(description="live devices reporting any version running now")
    desired: int = Field(description="live devices whose desired state is any version")
    created_at: datetime
    updated_at: datetime


class BundleDetail(BundlePublic):
    versions: list[BundleVersionPublic] = Field(description="newest first, by semver")


class BundleDiffPublic(BaseModel):
    name: str
    from_version: str
    to_version: str
    from_digest: str
    to_digest: str
    changed_paths: list[str]
    diff: str = Field(description="unified diff of the canonical documents as YAML")


class BundleAssign(Body):
    model_config = ConfigDict(json_schema_extra=TARGET_RULE)

    devices: list[str] | None = Field(default=None, max_length=10_000)
    group: GroupName | None = None
    selector: Selector | None = None


class AssignedDevice(BaseModel):
    device_id: str
    generation: int


class AssignmentPublic(BaseModel):
    bundle: str
    version: str
    digest: str
    devices: list[AssignedDevice]
    cordoned: list[str] = Field(default=[], description="matched but left out: cordoned")
