"""What the rollout engine sees: a rollout's target as device ids, and each device's state.

The pure engine (domain/rollouts.py) decides from these; this module only reads the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from signalbeam.domain.errors import InvalidInput, NotFound
from signalbeam.domain.model import ApplyStatus, Presence
from signalbeam.domain.rollouts import DeviceObservation, RolloutState, claims
from signalbeam.server.db.models import Device, Rollout
from signalbeam.server.services.bundles import Target
from signalbeam.server.services.context import UnitOfWork
from signalbeam.server.services.devices import DeviceFilter, matching_ids


def target_document(target: Target) -> dict[str, Any]:
    """The target as stored on the rollout row: exactly one of devices, group or selector."""
    kind = target.kind()
    return {kind: getattr(target, kind)}


def target_of(document: Mapping[str, Any]) -> Target:
    """The inverse of `target_document`."""
    return Target(document.get("devices"), document.get("group"), document.get("selector"))


def describe_target(document: Mapping[str, Any]) -> str:
    """`group "kiosks"`, `selector "env=prod"` or `3 devices`, for messages and lists."""
    if "group" in document:
        return f'group "{document["group"]}"'
    if "selector" in document:
        return f'selector "{document["selector"]}"'
    return f"{len(document.get('devices') or [])} devices"


async def checked_target(uow: UnitOfWork, target: Target) -> list[str]:
    """The target's device ids for a new rollout; unknown names and retired devices refused."""
    kind = target.kind()
    if target.devices is None:
        ids = await matching_ids(uow, DeviceFilter(group=target.group, selector=target.selector))
    else:
        ids = await _listed(uow, target.devices)
    if not ids:
        # Not found rather than invalid: the selector is well formed, the devices are not there.
        raise NotFound(
            f"no device matches {describe_target(target_document(target))}; a rollout needs at "
            "least one device (check the name with `signalbeam devices ls`)",
            field=kind,
        )
    return ids


async def _listed(uow: UnitOfWork, device_ids: Sequence[str]) -> list[str]:
    devices = {device.device_id: device for device in await uow.devices.get_many(device_ids)}
    missing = sorted(set(device_ids) - set(devices))
    if missing:
        raise NotFound(f"no such devices in this tenant: {', '.join(missing)}", field="devices")
    retired = sorted(d for d, device in devices.items() if device.decommissioned_at is not None)
    if retired:
        raise InvalidInput(
            f"decommissioned devices cannot run bundles: {', '.join(retired)}; leave them out",
            field="devices",
        )
    return list(dict.fromkeys(device_ids))


async def current_target(uow: UnitOfWork, document: Mapping[str, Any]) -> list[str]:
    """The target as it is now, for a running rollout: gone groups and devices simply drop out."""
    target = target_of(document)
    if target.devices is None:
        try:
            request = DeviceFilter(group=target.group, selector=target.selector)
            return await matching_ids(uow, request)
        except NotFound:
            # The group was deleted: its devices left the target, and the engine says so.
            return []
    live = {
        device.device_id
        for device in await uow.devices.get_many(target.devices)
        if device.decommissioned_at is None
    }
    return [device_id for device_id in dict.fromkeys(target.devices) if device_id in live]


async def held_devices(
    uow: UnitOfWork, rollouts: Iterable[Rollout], with_targets: bool
) -> dict[str, str]:
    """Devices the given active rollouts hold, each mapped to the holding rollout's label.

    With `with_targets`, devices a rollout may still take (its target) count as held too,
    which is what creating a new rollout must respect.
    """
    held: dict[str, str] = {}
    for row in rollouts:
        state = RolloutState.from_dict(row.state)
        target = await current_target(uow, row.target) if with_targets else ()
        held.update({k: v for k, v in claims(state, target).items() if k not in held})
    return held


async def observe(
    uow: UnitOfWork, device_ids: Iterable[str], held: Mapping[str, str]
) -> dict[str, DeviceObservation]:
    """How each known device stands now; unknown or decommissioned ones are left out (offline)."""
    devices = await uow.devices.get_many(list(dict.fromkeys(device_ids)))
    return {
        device.device_id: observation(device, held.get(device.device_id))
        for device in devices
        if device.decommissioned_at is None
    }


def observation(device: Device, claimed_by: str | None = None) -> DeviceObservation:
    """One device's presence, desired generation and last report, as the engine reads them."""
    reported = device.reported_state or {}
    timezone = (device.facts or {}).get("timezone")
    return DeviceObservation(
        online=device.presence == Presence.ONLINE,
        desired_generation=device.desired_generation,
        generation=device.reported_generation,
        status=str(reported.get("status") or ApplyStatus.IDLE),
        reason=reported.get("reason"),
        retryable=bool(reported.get("retryable", False)),
        bundle=reported.get("bundle"),
        version=reported.get("version"),
        timezone=timezone if isinstance(timezone, str) else None,
        claimed_by=claimed_by,
        cordoned=device.cordoned_at is not None,
    )
