"""Groups: static member lists and dynamic selectors."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from signalbeam.server.api.deps import CurrentActor, RuntimeDep
from signalbeam.server.api.management.v1 import convert, schemas
from signalbeam.server.api.management.v1.field_rules import Offset
from signalbeam.server.services import groups as group_service
from signalbeam.server.services.groups import GroupSummary

router = APIRouter(prefix="/groups", tags=["groups"])


@router.get("", response_model=list[schemas.GroupPublic])
async def list_groups(runtime: RuntimeDep, actor: CurrentActor) -> list[schemas.GroupPublic]:
    """Groups of your tenant with member counts."""
    return [convert.group(s) for s in await group_service.list_groups(runtime, actor)]


@router.post("", response_model=schemas.GroupPublic, status_code=201)
async def create(
    body: schemas.GroupCreate, runtime: RuntimeDep, actor: CurrentActor
) -> schemas.GroupPublic:
    """Create a dynamic group (with `selector`) or a static one (without)."""
    group = await group_service.create(runtime, actor, body.name, body.selector, body.description)
    return await _detail(runtime, actor, group.name, limit=1)


async def _detail(
    runtime: RuntimeDep, actor: CurrentActor, name: str, limit: int, offset: int = 0
) -> schemas.GroupDetail:
    group, devices, total = await group_service.show(runtime, actor, name, limit, offset)
    return schemas.GroupDetail(
        **convert.group(GroupSummary(group, total)).model_dump(),
        devices=[convert.device(d) for d in devices],
    )


@router.get("/{name}", response_model=schemas.GroupDetail)
async def show(
    name: str,
    runtime: RuntimeDep,
    actor: CurrentActor,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> schemas.GroupDetail:
    """A group with a page of its member devices."""
    return await _detail(runtime, actor, name, limit, offset)


@router.post("/{name}/members", response_model=schemas.GroupPublic)
async def add_members(
    name: str, body: schemas.MembersChange, runtime: RuntimeDep, actor: CurrentActor
) -> schemas.GroupPublic:
    """Add devices to a static group."""
    await group_service.change_members(runtime, actor, name, body.devices, add=True)
    return await _detail(runtime, actor, name, limit=1)


@router.delete("/{name}/members/{device_id}", response_model=schemas.GroupPublic)
async def remove_member(
    name: str, device_id: str, runtime: RuntimeDep, actor: CurrentActor
) -> schemas.GroupPublic:
    """Remove a device from a static group."""
    await group_service.change_members(runtime, actor, name, [device_id], add=False)
    return await _detail(runtime, actor, name, limit=1)


@router.delete("/{name}", status_code=204)
async def delete(name: str, runtime: RuntimeDep, actor: CurrentActor) -> Response:
    """Delete a group; its devices are not touched."""
    await group_service.delete(runtime, actor, name)
    return Response(status_code=204)
