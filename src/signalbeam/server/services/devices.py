"""Device use cases: list, inspect, label, decommission, metric history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from signalbeam.domain.errors import InvalidInput, NotFound
from signalbeam.domain.metrics import MAX_POINTS, Bucket, choose_step, downsample
from signalbeam.domain.model import EventType, GroupKind, Presence, Role
from signalbeam.domain.selectors import Selector, parse_selector
from signalbeam.server.db.models import Device, Event, Group
from signalbeam.server.observability.tracing import traced
from signalbeam.server.repositories.devices import SORT_COLUMNS, DeviceQuery
from signalbeam.server.repositories.events import EventQuery
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.config_refresh import resync_devices
from signalbeam.server.services.context import Actor, UnitOfWork
from signalbeam.server.services.desired import Pending, announce_desired
from signalbeam.server.services.enrollment import validate_labels


@dataclass(frozen=True)
class DeviceFilter:
    """A device list request as the API and CLI express it (strings not yet parsed)."""

    selector: str | None = None
    status: str | None = None
    group: str | None = None
    search: str | None = None
    sort: str = "name"
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class DeviceDetail:
    """One device with everything `devices show` displays."""

    device: Device
    groups: list[str]
    events: list[Event]


async def _query(uow: UnitOfWork, request: DeviceFilter) -> DeviceQuery:
    selector = parse_selector(request.selector) if request.selector else None
    static_group: int | None = None
    if request.group:
        group = await _group(uow, request.group)
        if group.kind == GroupKind.DYNAMIC:
            extra = parse_selector(group.selector or "")
            base = selector.requirements if selector else ()
            selector = Selector(requirements=base + extra.requirements)
        else:
            static_group = group.id
    status = request.status
    if status is not None and status not in {p.value for p in Presence}:
        allowed = ", ".join(p.value for p in Presence)
        raise InvalidInput(f'status "{status}" is not one of: {allowed}', field="status")
    sort = request.sort.removeprefix("-")
    if sort not in SORT_COLUMNS:
        allowed = ", ".join(SORT_COLUMNS)
        raise InvalidInput(
            f'cannot sort by "{sort}"; use one of: {allowed} (prefix - for descending)',
            field="sort",
        )
    return DeviceQuery(
        selector=selector,
        presence=status,
        static_group_id=static_group,
        search=request.search,
        sort=sort,
        descending=request.sort.startswith("-"),
        limit=request.limit,
        offset=request.offset,
        include_decommissioned=status == Presence.DECOMMISSIONED,
    )


async def matching_ids(uow: UnitOfWork, request: DeviceFilter) -> list[str]:
    """Ids of every live device a filter matches (selector and/or group), without paging."""
    return await uow.devices.matching_ids(await _query(uow, request))


async def _group(uow: UnitOfWork, name: str) -> Group:
    group = await uow.groups.get(name)
    if group is None:
        raise NotFound(f'no group "{name}"; list groups with `signalbeam groups ls`', field="group")
    return group


async def find_device(uow: UnitOfWork, device_id: str) -> Device:
    device = await uow.devices.get(device_id)
    if device is None:
        raise NotFound(
            f'no device "{device_id}" in this tenant; list devices with `signalbeam devices ls`',
            field="device_id",
        )
    return device


@traced("devices.list_devices")
async def list_devices(
    runtime: Runtime, actor: Actor, request: DeviceFilter
) -> tuple[list[Device], int]:
    """One page of the tenant's devices matching the filter, and how many match in all."""
    async with runtime.unit_of_work(actor) as uow:
        return await uow.devices.search(await _query(uow, request))


async def groups_of(uow: UnitOfWork, device: Device) -> list[str]:
    """Names of the groups a device belongs to: static memberships and matching dynamic groups."""
    names = {group.name for group in await uow.groups.static_groups_of(device)}
    for group in await uow.groups.dynamic():
        if parse_selector(group.selector or "").matches(device.labels):
            names.add(group.name)
    return sorted(names)


@traced("devices.show")
async def show(runtime: Runtime, actor: Actor, device_id: str, events: int = 20) -> DeviceDetail:
    """A device with its groups and latest activity."""
    async with runtime.unit_of_work(actor) as uow:
        device = await find_device(uow, device_id)
        history = await uow.events.search(EventQuery(device_pk=device.id, limit=events))
        return DeviceDetail(device=device, groups=await groups_of(uow, device), events=history)


async def edit_labels(
    runtime: Runtime, actor: Actor, device_id: str, set_: dict[str, str], remove: list[str]
) -> Device:
    """Set and remove labels; records the change and any dynamic group it moves the device across."""
    actor.require(Role.OPERATOR)
    validate_labels(set_)
    pending = Pending()
    async with runtime.unit_of_work(actor) as uow:
        device = await find_device(uow, device_id)
        before = dict(device.labels)
        after = {k: v for k, v in {**before, **set_}.items() if k not in remove}
        if after != before:
            groups_before = await groups_of(uow, device)
            await uow.devices.replace_labels(device, after)
            uow.record(
                EventType.DEVICE_LABELS_CHANGED,
                _label_message(before, after),
                device=device,
                data={"before": before, "after": after},
            )
            groups_after = await groups_of(uow, device)
            _record_group_change(uow, device, groups_before, groups_after)
            if groups_after != groups_before:
                # A dynamic group it joined or left may carry config.
                await resync_devices(uow, [device.device_id], pending)
            await uow.commit()
            await uow.session.refresh(device)
    announce_desired(runtime, pending)
    return device


def _label_message(before: dict[str, str], after: dict[str, str]) -> str:
    changes = [f"{k}={v}" for k, v in after.items() if before.get(k) != v]
    changes += [f"{k}-" for k in before if k not in after]
    return "labels changed: " + " ".join(changes)


def _record_group_change(
    uow: UnitOfWork, device: Device, before: list[str], after: list[str]
) -> None:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    if added or removed:
        parts = [f"joined {', '.join(added)}"] if added else []
        parts += [f"left {', '.join(removed)}"] if removed else []
        uow.record(
            EventType.DEVICE_GROUPS_CHANGED,
            "groups changed: " + "; ".join(parts),
            device=device,
            data={"added": added, "removed": removed},
        )


async def decommission(runtime: Runtime, actor: Actor, device_id: str) -> Device:
    """Revoke a device's credential and hide it from the fleet; its history stays."""
    actor.require(Role.OPERATOR)
    async with runtime.unit_of_work(actor) as uow:
        device = await find_device(uow, device_id)
        if device.decommissioned_at is None:
            device.credential_hash = None
            device.decommissioned_at = datetime.now(UTC)
            device.presence = Presence.DECOMMISSIONED.value
            uow.record(
                EventType.DEVICE_DECOMMISSIONED,
                f"device {device.name} decommissioned: credential revoked",
                device=device,
            )
            await uow.commit()
            # After the commit, so a sync racing with us cannot cache the old credential again.
            runtime.devices.evict(device.id)
        return device


@dataclass(frozen=True)
class MetricHistory:
    """Downsampled metric series for one device."""

    start: datetime
    end: datetime
    step: timedelta
    buckets: list[Bucket]


async def metrics(
    runtime: Runtime,
    actor: Actor,
    device_id: str,
    start: datetime | None,
    end: datetime | None,
    step: timedelta | None,
) -> MetricHistory:
    """Samples of one device over a time range, averaged into `step` buckets."""
    end = end or datetime.now(UTC)
    start = start or end - timedelta(hours=1)
    if start >= end:
        raise InvalidInput("from must be before to", field="from")
    if step is not None and step <= timedelta(0):
        raise InvalidInput("step must be a positive duration such as 1m", field="step")
    chosen = choose_step(end - start, step, floor=timedelta(seconds=10))
    if (end - start) / chosen > MAX_POINTS:
        raise InvalidInput(
            f"that range at that step gives more than {MAX_POINTS} points; use a larger step",
            field="step",
        )
    async with runtime.unit_of_work(actor) as uow:
        device = await find_device(uow, device_id)
        parts = await uow.metrics.history(device.id, start, end)
    return MetricHistory(start=start, end=end, step=chosen, buckets=downsample(parts, chosen))
