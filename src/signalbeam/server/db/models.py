"""SQLAlchemy models: one table per aggregate, every tenant-owned row carries `tenant_id`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# SQLite only autoincrements INTEGER primary keys; PostgreSQL gets BIGINT for big tables.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use datetime.now(UTC)")
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            from datetime import UTC

            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    """Declarative base with JSON mapped for plain dict/list columns."""

    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UtcDateTime}


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("tenant_id", "username"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    username: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))
    disabled_at: Mapped[datetime | None]


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class EnrollmentToken(Base):
    __tablename__ = "enrollment_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    labels: Mapped[dict[str, Any]]
    group_name: Mapped[str | None] = mapped_column(String(63))
    max_uses: Mapped[int | None]
    uses: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))
    revoked_at: Mapped[datetime | None]


class Device(Base):
    __tablename__ = "devices"
    __table_args__ = (
        UniqueConstraint("tenant_id", "device_id"),
        Index("ix_devices_tenant_presence", "tenant_id", "presence"),
        Index("ix_devices_tenant_name", "tenant_id", "name"),
        Index("ix_devices_presence_seen", "presence", "last_seen_at"),
        Index("ix_devices_tenant_desired", "tenant_id", "desired_bundle", "desired_version"),
        Index("ix_devices_tenant_reported", "tenant_id", "reported_bundle", "reported_version"),
        Index("ix_devices_tenant_reported_status", "tenant_id", "reported_status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    device_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200))
    credential_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The hash of the agent's enrollment_id: the same one again is a retry of that enrollment.
    enrollment_id_hash: Mapped[str | None] = mapped_column(String(64))
    credential_rotated_at: Mapped[datetime]
    facts: Mapped[dict[str, Any]]
    labels: Mapped[dict[str, Any]]
    presence: Mapped[str] = mapped_column(String(16))
    last_seen_at: Mapped[datetime | None]
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    desired_generation: Mapped[int] = mapped_column(BigInteger, default=0)
    desired_state: Mapped[dict[str, Any]]
    reported_generation: Mapped[int] = mapped_column(BigInteger, default=0)
    reported_state: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Copies of what desired_state and reported_state name, so bundle lists can count devices
    # and device lists can filter by status with an index instead of reading JSON.
    desired_bundle: Mapped[str | None] = mapped_column(String(63))
    desired_version: Mapped[str | None] = mapped_column(String(200))
    reported_bundle: Mapped[str | None] = mapped_column(String(200))
    reported_version: Mapped[str | None] = mapped_column(String(200))
    reported_status: Mapped[str | None] = mapped_column(String(32))
    # The highest outbox sequence numbers stored, so a re-sent telemetry batch is harmless.
    telemetry_sample_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    telemetry_event_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    enrolled_at: Mapped[datetime]
    decommissioned_at: Mapped[datetime | None]
    # A cordoned device keeps running what it has; new rollouts and assignments leave it out.
    cordoned_at: Mapped[datetime | None]
    cordoned_by: Mapped[str | None] = mapped_column(String(255))
    # The boot id the agent last reported; when it changes the device rebooted.
    boot_id: Mapped[str | None] = mapped_column(String(64))
    # A reboot action waiting for a new boot id (cleared once one arrives).
    reboot_requested_at: Mapped[datetime | None]
    reboot_requested_by: Mapped[str | None] = mapped_column(String(255))
    # Artifact downloads served to it: requests, those that resumed (a Range past byte 0),
    # those cut before every byte was handed to the network, and bytes sent.
    downloads: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    downloads_resumed: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    downloads_cut: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    download_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class DeviceLabel(Base):
    """Labels again, one row each, so selectors become indexed SQL instead of a table scan."""

    __tablename__ = "device_labels"
    __table_args__ = (Index("ix_device_labels_lookup", "tenant_id", "key", "value"),)

    device_pk: Mapped[int] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(63), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    value: Mapped[str] = mapped_column(String(63))


class Group(Base):
    __tablename__ = "groups"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(16))
    selector: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))


class GroupMember(Base):
    __tablename__ = "group_members"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    device_pk: Mapped[int] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Bundle(Base):
    """A named bundle; its content lives in immutable versions."""

    __tablename__ = "bundles"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))


class BundleVersion(Base):
    """One pushed version of a bundle: the canonical spec and its digest, never changed."""

    __tablename__ = "bundle_versions"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name", "version"),
        # Semver precedence in SQL: the numbers, then releases after their pre-releases.
        Index(
            "ix_bundle_versions_precedence",
            "tenant_id",
            "name",
            "major",
            "minor",
            "patch",
            "is_release",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    bundle_id: Mapped[int] = mapped_column(ForeignKey("bundles.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(63))
    version: Mapped[str] = mapped_column(String(200))
    major: Mapped[int] = mapped_column(BigInteger)
    minor: Mapped[int] = mapped_column(BigInteger)
    patch: Mapped[int] = mapped_column(BigInteger)
    is_release: Mapped[bool]
    prerelease: Mapped[str] = mapped_column(String(200))
    digest: Mapped[str] = mapped_column(String(80))
    spec: Mapped[dict[str, Any]]
    description: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_tenant_id", "tenant_id", "id"),
        Index("ix_events_device", "device_pk", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    device_pk: Mapped[int | None] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    device_id: Mapped[str | None] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(255))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class MetricSample(Base):
    """One raw heartbeat sample; kept for the raw retention window."""

    __tablename__ = "metric_samples"
    __table_args__ = (Index("ix_metric_samples_device_ts", "device_pk", "ts"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    device_pk: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    ts: Mapped[datetime]
    cpu: Mapped[float | None] = mapped_column(Float)
    memory: Mapped[float | None] = mapped_column(Float)
    disk: Mapped[float | None] = mapped_column(Float)
    load1: Mapped[float | None] = mapped_column(Float)
    temperature: Mapped[float | None] = mapped_column(Float)


class MetricRollup(Base):
    """Averages and maxima of raw samples over one rollup step, kept long after raw is gone."""

    __tablename__ = "metric_rollups"

    device_pk: Mapped[int] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    bucket: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    samples: Mapped[int]
    cpu: Mapped[float | None] = mapped_column(Float)
    memory: Mapped[float | None] = mapped_column(Float)
    disk: Mapped[float | None] = mapped_column(Float)
    load1: Mapped[float | None] = mapped_column(Float)
    temperature: Mapped[float | None] = mapped_column(Float)
    cpu_max: Mapped[float | None] = mapped_column(Float)
    memory_max: Mapped[float | None] = mapped_column(Float)
    disk_max: Mapped[float | None] = mapped_column(Float)


class Rollout(Base):
    """A rollout: its whole engine state as JSON, plus the columns lists filter and sort on.

    `revision` grows with every write; writers compare it so an engine that lost its lease, or
    an operator action racing the engine, can never overwrite a newer state.
    """

    __tablename__ = "rollouts"
    __table_args__ = (
        Index("ix_rollouts_tenant_status", "tenant_id", "status"),
        Index("ix_rollouts_active", "active"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool]
    bundle: Mapped[str] = mapped_column(String(63))
    version: Mapped[str] = mapped_column(String(200))
    target: Mapped[dict[str, Any]]
    state: Mapped[dict[str, Any]]
    revision: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime]


class WorkerLease(Base):
    """Which server process runs a singleton worker (the rollout engine), and until when."""

    __tablename__ = "worker_leases"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime]
    acquired_at: Mapped[datetime]


class SigningKey(Base):
    """A public key the tenant's devices trust for bundles: an operator's, or the server's own.

    Only the server key has a private half here (`private_key`, raw ed25519 seed, base64);
    operator private keys never reach the server.
    """

    __tablename__ = "signing_keys"
    __table_args__ = (
        UniqueConstraint("tenant_id", "key_id"),
        UniqueConstraint("tenant_id", "name"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    key_id: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(16))
    public_key: Mapped[str] = mapped_column(String(200))
    private_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))


class BundleSignature(Base):
    """A signature over one bundle version's manifest by one key."""

    __tablename__ = "bundle_signatures"
    __table_args__ = (UniqueConstraint("bundle_version_id", "key_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    bundle_version_id: Mapped[int] = mapped_column(
        ForeignKey("bundle_versions.id", ondelete="CASCADE"), index=True
    )
    key_id: Mapped[str] = mapped_column(String(80))
    signature: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))


class TenantPolicy(Base):
    """Per-tenant switches; a missing row means the defaults."""

    __tablename__ = "tenant_policies"

    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    operator_keys_only: Mapped[bool] = mapped_column(default=False)
    # The trust statement devices pin grows a version with every key or policy change;
    # `trust_signatures` holds operator signatures over the current one (the server's own
    # signature is recomputed: ed25519 signatures are deterministic).
    trust_version: Mapped[int] = mapped_column(BigInteger, default=1)
    trust_signatures: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Remote exec and shell stay off until an admin turns them on; `exec_allow` optionally
    # limits exec to command patterns (domain/remote_access.py).
    remote_access: Mapped[bool] = mapped_column(default=False, server_default=false())
    exec_allow: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default="[]")
    updated_at: Mapped[datetime]


class Artifact(Base):
    """One upload of a blob under a name; the bytes live in the artifact store by sha256."""

    __tablename__ = "artifacts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name", "sha256"),
        Index("ix_artifacts_tenant_sha256", "tenant_id", "sha256"),
        # Blobs are shared by content across tenants; removing one asks whether any row remains.
        Index("ix_artifacts_sha256", "sha256"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))


class BundleArtifact(Base):
    """A bundle version that takes an artifact from the control plane, so it cannot be removed."""

    __tablename__ = "bundle_artifacts"
    __table_args__ = (Index("ix_bundle_artifacts_tenant_sha256", "tenant_id", "sha256"),)

    bundle_version_id: Mapped[int] = mapped_column(
        ForeignKey("bundle_versions.id", ondelete="CASCADE"), primary_key=True
    )
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))


class AlertRule(Base):
    """A condition a tenant wants to hear about, on the devices (or rollouts) in its scope."""

    __tablename__ = "alert_rules"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    for_seconds: Mapped[int] = mapped_column(Integer, default=0)
    selector: Mapped[str | None] = mapped_column(Text)
    group_name: Mapped[str | None] = mapped_column(String(63))
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime]
    # metric_above rules: which metric, over what, and for disks which mount (all: None).
    metric: Mapped[str | None] = mapped_column(String(16))
    threshold: Mapped[float | None] = mapped_column(Float)
    mount: Mapped[str | None] = mapped_column(String(255))


class Incident(Base):
    """One rule firing on one subject (a device, or `rollout/<id>`), from open to resolved."""

    __tablename__ = "incidents"
    __table_args__ = (
        Index("ix_incidents_tenant_state", "tenant_id", "state", "id"),
        Index("ix_incidents_subject", "rule_id", "subject", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    rule_id: Mapped[int] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(160))
    device_pk: Mapped[int | None] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    device_id: Mapped[str | None] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(Text)
    opened_at: Mapped[datetime]
    last_fired_at: Mapped[datetime]
    fired_count: Mapped[int] = mapped_column(Integer, default=1)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(255))
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(255))
    # The change that preceded it on its device or rollout: {event_id, type, message, at}.
    cause: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class IncidentEntry(Base):
    """One line of an incident's timeline: fired, fired again, acknowledged, resolved."""

    __tablename__ = "incident_entries"
    __table_args__ = (Index("ix_incident_entries_incident", "incident_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(255))
    message: Mapped[str] = mapped_column(Text)


class AlertWait(Base):
    """A condition that began and fires at `due_at` unless it ends first (offline for T)."""

    __tablename__ = "alert_waits"
    __table_args__ = (Index("ix_alert_waits_due", "due_at"),)

    rule_id: Mapped[int] = mapped_column(
        ForeignKey("alert_rules.id", ondelete="CASCADE"), primary_key=True
    )
    subject: Mapped[str] = mapped_column(String(160), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    device_pk: Mapped[int | None] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    since: Mapped[datetime]
    due_at: Mapped[datetime]
    message: Mapped[str] = mapped_column(Text)


class WorkerCursor(Base):
    """How far a worker that follows the event log has read (the alerts worker)."""

    __tablename__ = "worker_cursors"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(BigInteger, default=0)


class Notifier(Base):
    """Where a tenant's notifications go: a webhook, a chat webhook or an email address list."""

    __tablename__ = "notifiers"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(16))
    # Routing: incidents of this severity and up, on devices this selector matches (all: None).
    min_severity: Mapped[str] = mapped_column(String(16))
    selector: Mapped[str | None] = mapped_column(Text)
    # url for webhooks; smtp host, port, starttls, username, sender and recipients for email.
    config: Mapped[dict[str, Any]]
    # The webhook signing key or the SMTP password: written, used, never shown.
    secret: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))
    # A webhook: the event types it is sent ("device.*,rollout.completed"), not incidents.
    # It shares the notifier's signing, deliveries, retries and log. None: an alert notifier.
    events: Mapped[str | None] = mapped_column(Text)


class Delivery(Base):
    """One notice owed to one notifier, kept until it is delivered or every retry failed."""

    __tablename__ = "deliveries"
    __table_args__ = (
        # One delivery per notifier and incident transition: never sent twice.
        UniqueConstraint("notifier_id", "incident_id", "transition"),
        Index("ix_deliveries_due", "state", "next_attempt_at"),
        Index("ix_deliveries_notifier", "notifier_id", "id"),
        # One delivery per webhook and event: an event is never sent twice to one webhook.
        Index("ix_deliveries_event", "notifier_id", "event_id", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    notifier_id: Mapped[int] = mapped_column(ForeignKey("notifiers.id", ondelete="CASCADE"))
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    transition: Mapped[str] = mapped_column(String(64))
    notice: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_result: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    # The event a webhook's delivery carries (no foreign key: retention may drop the event
    # while its delivery log is kept).
    event_id: Mapped[int | None] = mapped_column(BigInteger)


class DeliveryAttempt(Base):
    """One try at a delivery: what the receiver answered, or why it could not be reached."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (Index("ix_delivery_attempts_delivery", "delivery_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    # How many notices the message carried (more than one when a storm was grouped).
    grouped: Mapped[int] = mapped_column(Integer, default=1)


class AlertSilence(Base):
    """A time when a tenant's notifications are muted (incidents still open): one span, or a
    recurring maintenance window; for devices a selector matches, and one rule or all."""

    __tablename__ = "alert_silences"
    __table_args__ = (Index("ix_alert_silences_tenant", "tenant_id", "ends_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    selector: Mapped[str | None] = mapped_column(Text)
    rule: Mapped[str | None] = mapped_column(String(63))
    window: Mapped[str | None] = mapped_column(Text)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    comment: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))


class ConfigLayer(Base):
    """One version of one config layer (the tenant's, a group's or a device's), never changed.

    `secrets` maps each secret key to its value sealed with the secrets key (secrets_box.py),
    which is kept outside the database; `secret_hashes` are what signatures and digests cover.
    `signatures` are the server's over the layer's payload (protocol/config_v1.py).
    """

    __tablename__ = "config_layers"
    # The unique constraint's index also finds a layer's latest version.
    __table_args__ = (UniqueConstraint("tenant_id", "scope", "name", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(BigInteger)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    values: Mapped[dict[str, Any]]
    secrets: Mapped[dict[str, Any]]
    secret_hashes: Mapped[dict[str, Any]]
    signatures: Mapped[list[Any]]
    author: Mapped[str] = mapped_column(String(255))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
