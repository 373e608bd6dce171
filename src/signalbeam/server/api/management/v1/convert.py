"""ORM rows to public schemas: routes never return ORM objects."""

from __future__ import annotations

from datetime import UTC, datetime

from signalbeam.server.api.management.v1 import schemas
from signalbeam.server.db.models import ApiToken, Device, EnrollmentToken, Event, User
from signalbeam.server.services import bundles
from signalbeam.server.services.groups import GroupSummary


def user(row: User) -> schemas.UserPublic:
    return schemas.UserPublic(
        username=row.username,
        role=row.role,
        created_at=row.created_at,
        created_by=row.created_by,
        disabled=row.disabled_at is not None,
    )


def api_token(row: ApiToken) -> schemas.ApiTokenPublic:
    return schemas.ApiTokenPublic(
        id=row.id,
        name=row.name,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked=row.revoked_at is not None,
    )


def enrollment_token(row: EnrollmentToken) -> schemas.EnrollmentTokenPublic:
    now = datetime.now(UTC)
    usable = (
        row.revoked_at is None
        and (row.expires_at is None or row.expires_at > now)
        and (row.max_uses is None or row.uses < row.max_uses)
    )
    return schemas.EnrollmentTokenPublic(
        id=row.id,
        description=row.description,
        labels=row.labels,
        group=row.group_name,
        max_uses=row.max_uses,
        uses=row.uses,
        expires_at=row.expires_at,
        created_at=row.created_at,
        created_by=row.created_by,
        revoked=row.revoked_at is not None,
        usable=usable,
    )


def device(row: Device) -> schemas.DevicePublic:
    return schemas.DevicePublic(
        device_id=row.device_id,
        name=row.name,
        presence=row.presence,
        last_seen_at=row.last_seen_at,
        agent_version=str(row.facts.get("agent_version", "")),
        labels=row.labels,
        metrics=row.metrics,
        desired_generation=row.desired_generation,
        reported_generation=row.reported_generation,
        enrolled_at=row.enrolled_at,
        bundle=row.reported_bundle,
        bundle_version=row.reported_version,
        reported_status=row.reported_status,
        cordoned=row.cordoned_at is not None,
        boot_id=row.boot_id,
        rebooting_since=row.reboot_requested_at,
        downloads=schemas.DownloadCounters(
            requests=row.downloads,
            resumed=row.downloads_resumed,
            cut=row.downloads_cut,
            bytes_sent=row.download_bytes,
        ),
    )


def desired(row: Device) -> schemas.DesiredPublic:
    return schemas.DesiredPublic(
        bundle=row.desired_bundle, version=row.desired_version, generation=row.desired_generation
    )


def reported(row: Device) -> schemas.ReportedPublic:
    state = row.reported_state or {}
    return schemas.ReportedPublic(
        status=row.reported_status,
        reason=state.get("reason"),
        failed_unit=state.get("failed_unit"),
        failure_log=state.get("failure_log") or [],
        bundle=row.reported_bundle,
        version=row.reported_version,
        digest=state.get("digest"),
        generation=row.reported_generation,
        items=[schemas.ReportedItemPublic.model_validate(i) for i in state.get("items", [])],
    )


def event(row: Event) -> schemas.EventPublic:
    return schemas.EventPublic(
        id=row.id,
        type=row.type,
        device_id=row.device_id,
        actor=row.actor,
        message=row.message,
        data=row.data,
        created_at=row.created_at,
    )


def group(summary: GroupSummary) -> schemas.GroupPublic:
    row = summary.group
    return schemas.GroupPublic(
        name=row.name,
        kind=row.kind,
        selector=row.selector,
        description=row.description,
        members=summary.members,
        created_at=row.created_at,
        created_by=row.created_by,
    )


def bundle_pushed(pushed: bundles.Pushed) -> schemas.BundlePushed:
    row = pushed.version
    return schemas.BundlePushed(
        name=row.name,
        version=row.version,
        digest=row.digest,
        description=row.description,
        created_at=row.created_at,
        created_by=row.created_by,
        created=pushed.created,
    )


def bundle_version(summary: bundles.VersionSummary) -> schemas.BundleVersionPublic:
    row = summary.version
    return schemas.BundleVersionPublic(
        name=row.name,
        version=row.version,
        digest=row.digest,
        description=row.description,
        created_at=row.created_at,
        created_by=row.created_by,
        running=summary.running,
        desired=summary.desired,
    )


def bundle(summary: bundles.BundleSummary) -> schemas.BundlePublic:
    return schemas.BundlePublic(
        name=summary.bundle.name,
        latest_version=summary.latest,
        version_count=summary.versions,
        running=summary.running,
        desired=summary.desired,
        created_at=summary.bundle.created_at,
        updated_at=summary.updated_at,
    )
