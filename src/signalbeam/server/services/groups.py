"""Groups: static member lists and dynamic selectors."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from signalbeam.domain.errors import Conflict, InvalidInput, NotFound
from signalbeam.domain.model import EventType, GroupKind, Role
from signalbeam.domain.selectors import parse_selector
from signalbeam.server.db.models import Device, Group
from signalbeam.server.observability.tracing import traced
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.config_refresh import resync_devices
from signalbeam.server.services.context import Actor, UnitOfWork
from signalbeam.server.services.desired import Pending, announce_desired
from signalbeam.server.services.devices import DeviceFilter, list_devices, matching_ids

GROUP_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
_NAME = re.compile(GROUP_NAME_PATTERN)


@dataclass(frozen=True)
class GroupSummary:
    """A group and how many live devices are in it."""

    group: Group
    members: int


@traced("groups.create")
async def create(
    runtime: Runtime, actor: Actor, name: str, selector: str | None, description: str = ""
) -> Group:
    """Create a dynamic group (with a selector) or an empty static group (without)."""
    actor.require(Role.OPERATOR)
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            f'group name "{name}" is not valid: use letters, digits, ".", "_" or "-" '
            "(up to 63, starting with a letter or digit)",
            field="name",
        )
    canonical = str(parse_selector(selector)) if selector is not None else None
    async with runtime.unit_of_work(actor) as uow:
        if await uow.groups.get(name) is not None:
            raise Conflict(f'group "{name}" already exists', field="name")
        group = await uow.groups.add(
            Group(
                name=name,
                kind=GroupKind.DYNAMIC.value if canonical is not None else GroupKind.STATIC.value,
                selector=canonical,
                description=description,
                created_at=datetime.now(UTC),
                created_by=str(actor),
            )
        )
        what = f"selector {canonical}" if canonical is not None else "static members"
        uow.record(EventType.GROUP_CREATED, f"group {name} created ({what})", data={"group": name})
        await uow.commit()
    return group


async def _get(uow: UnitOfWork, name: str) -> Group:
    group = await uow.groups.get(name)
    if group is None:
        raise NotFound(f'no group "{name}"; list groups with `signalbeam groups ls`', field="group")
    return group


async def list_groups(runtime: Runtime, actor: Actor) -> list[GroupSummary]:
    """Every group of the tenant with its member count."""
    async with runtime.unit_of_work(actor) as uow:
        groups = await uow.groups.all()
        static_counts = await uow.groups.static_member_counts()
    summaries = []
    for group in groups:
        if group.kind == GroupKind.STATIC:
            count = static_counts.get(group.id, 0)
        else:
            _, count = await list_devices(runtime, actor, DeviceFilter(group=group.name, limit=1))
        summaries.append(GroupSummary(group=group, members=count))
    return summaries


async def show(
    runtime: Runtime, actor: Actor, name: str, limit: int = 100, offset: int = 0
) -> tuple[Group, list[Device], int]:
    """A group with one page of its members and the member count."""
    async with runtime.unit_of_work(actor) as uow:
        group = await _get(uow, name)
    devices, total = await list_devices(
        runtime, actor, DeviceFilter(group=name, limit=limit, offset=offset)
    )
    return group, devices, total


@traced("groups.change_members")
async def change_members(
    runtime: Runtime, actor: Actor, name: str, device_ids: list[str], *, add: bool
) -> Group:
    """Add devices to, or remove them from, a static group."""
    actor.require(Role.OPERATOR)
    pending = Pending()
    async with runtime.unit_of_work(actor) as uow:
        group = await _get(uow, name)
        if group.kind != GroupKind.STATIC:
            raise Conflict(
                f'group "{name}" is dynamic (selector {group.selector}); change device labels '
                "instead, or use a static group",
                field="group",
            )
        devices = await uow.devices.get_many(device_ids)
        missing = sorted(set(device_ids) - {d.device_id for d in devices})
        if missing:
            raise NotFound(f"no such devices in this tenant: {', '.join(missing)}", field="devices")
        members = await uow.groups.member_pks(group)
        changed = [d for d in devices if (d.id in members) != add]
        if add:
            await uow.groups.add_members(group, changed)
        else:
            await uow.groups.remove_members(group, changed)
        verb, key = ("joined", "added") if add else ("left", "removed")
        for device in changed:
            uow.record(
                EventType.DEVICE_GROUPS_CHANGED,
                f"groups changed: {verb} {name}",
                device=device,
                data={key: [name]},
            )
        # The group's config now reaches (or no longer reaches) them.
        await resync_devices(uow, [d.device_id for d in changed], pending)
        await uow.commit()
    announce_desired(runtime, pending)
    return group


async def delete(runtime: Runtime, actor: Actor, name: str) -> None:
    """Delete a group and its config layer; its devices stay, without that layer's config."""
    actor.require(Role.OPERATOR)
    pending = Pending()
    async with runtime.unit_of_work(actor) as uow:
        group = await _get(uow, name)
        members = await matching_ids(uow, DeviceFilter(group=name))
        await uow.groups.delete(group)
        await uow.config.drop("group", name)
        uow.record(EventType.GROUP_DELETED, f"group {name} deleted", data={"group": name})
        # Its config no longer reaches its devices.
        await resync_devices(uow, members, pending)
        await uow.commit()
    announce_desired(runtime, pending)
