"""Devices: list, inspect, label, decommission, metric history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from signalbeam.domain.durations import parse_duration
from signalbeam.domain.model import Presence
from signalbeam.server.api.deps import CurrentActor, RuntimeDep
from signalbeam.server.api.management.v1 import convert, schemas
from signalbeam.server.api.management.v1.field_rules import (
    DEVICE_SORT_PATTERN,
    Duration,
    GroupName,
    Offset,
    SelectorOrBlank,
    Timestamp,
)
from signalbeam.server.services import desired
from signalbeam.server.services import devices as device_service
from signalbeam.server.services.config_sealing import redacted_document
from signalbeam.server.services.devices import DeviceFilter

router = APIRouter(prefix="/devices", tags=["devices"])


@router.get("", response_model=schemas.DeviceList)
async def list_devices(
    runtime: RuntimeDep,
    actor: CurrentActor,
    selector: Annotated[
        SelectorOrBlank | None, Query(examples=["env=prod,site in (oslo,bergen)"])
    ] = None,
    status: Annotated[
        Presence | None, Query(description="decommissioned devices are listed only when asked for")
    ] = None,
    group: Annotated[GroupName | None, Query()] = None,
    search: Annotated[str | None, Query(max_length=200)] = None,
    sort: Annotated[
        str,
        Query(
            pattern=DEVICE_SORT_PATTERN,
            description="name, device_id, last_seen, presence, enrolled; - for descending",
        ),
    ] = "name",
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Offset = 0,
) -> schemas.DeviceList:
    """Devices of your tenant, filtered, sorted and paged."""
    request = DeviceFilter(selector, status, group, search, sort, limit, offset)
    rows, total = await device_service.list_devices(runtime, actor, request)
    return schemas.DeviceList(
        items=[convert.device(r) for r in rows], total=total, limit=limit, offset=offset
    )


@router.post("/desired-state", response_model=schemas.DesiredStateResult)
async def set_desired_state(
    body: schemas.DesiredStateSet, runtime: RuntimeDep, actor: CurrentActor
) -> schemas.DesiredStateResult:
    """Low-level: give devices a raw desired-state document (bundles and rollouts build on this)."""
    generations = await desired.set_desired(runtime, actor, body.devices, body.spec, body.summary)
    return schemas.DesiredStateResult(generations=generations)


@router.get("/{device_id}", response_model=schemas.DeviceDetailPublic)
async def show(
    device_id: str, runtime: RuntimeDep, actor: CurrentActor
) -> schemas.DeviceDetailPublic:
    """One device: facts, labels, groups, latest metrics and recent activity."""
    detail = await device_service.show(runtime, actor, device_id)
    row = detail.device
    return schemas.DeviceDetailPublic(
        **convert.device(row).model_dump(),
        facts=row.facts,
        groups=detail.groups,
        desired=convert.desired(row),
        reported=convert.reported(row),
        desired_state=redacted_document(row.desired_state),
        reported_state=row.reported_state,
        credential_rotated_at=row.credential_rotated_at,
        decommissioned_at=row.decommissioned_at,
        events=[convert.event(e) for e in detail.events],
    )


@router.patch("/{device_id}/labels", response_model=schemas.DevicePublic)
async def edit_labels(
    device_id: str, body: schemas.LabelsPatch, runtime: RuntimeDep, actor: CurrentActor
) -> schemas.DevicePublic:
    """Set and remove labels in one change."""
    row = await device_service.edit_labels(runtime, actor, device_id, body.set, body.remove)
    return convert.device(row)


@router.delete("/{device_id}", response_model=schemas.DevicePublic)
async def decommission(
    device_id: str, runtime: RuntimeDep, actor: CurrentActor
) -> schemas.DevicePublic:
    """Decommission: revoke the credential, keep the history."""
    return convert.device(await device_service.decommission(runtime, actor, device_id))


@router.get(
    "/{device_id}/metrics", response_model=schemas.MetricSeries, response_model_by_alias=True
)
async def metrics(
    device_id: str,
    runtime: RuntimeDep,
    actor: CurrentActor,
    start: Annotated[Timestamp | None, Query(alias="from")] = None,
    end: Annotated[Timestamp | None, Query(alias="to")] = None,
    step: Annotated[Duration | None, Query(examples=["1m", "1h"])] = None,
) -> schemas.MetricSeries:
    """Metric history averaged into steps (default about 300 points over the last hour)."""
    step_value = parse_duration(step, field="step") if step is not None else None
    history = await device_service.metrics(runtime, actor, device_id, start, end, step_value)
    points = [
        schemas.MetricPoint(
            ts=b.start,
            samples=b.samples,
            **{name: b.mean(name) for name in ("cpu", "memory", "disk", "load1", "temperature")},
            cpu_max=b.maximum("cpu"),
            memory_max=b.maximum("memory"),
            disk_max=b.maximum("disk"),
        )
        for b in history.buckets
    ]
    return schemas.MetricSeries(
        device_id=device_id,
        start=history.start,
        end=history.end,
        step_seconds=history.step.total_seconds(),
        points=points,
    )
