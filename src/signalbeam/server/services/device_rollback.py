"""Rolling one device back: the bundle version it was given before the one it has now."""

from __future__ import annotations

from signalbeam.domain.model import EventType
from signalbeam.server.db.models import Device
from signalbeam.server.repositories.events import EventQuery
from signalbeam.server.services.context import UnitOfWork

# How far back in the device's activity to look for the version before.
HISTORY = 200


async def previous_version(uow: UnitOfWork, device: Device) -> tuple[str, str] | None:
    """The last bundle@version the device was given that is not what it is given now."""
    current = (device.desired_bundle, device.desired_version)
    query = EventQuery(
        device_pk=device.id, types=[EventType.DEVICE_DESIRED_STATE_CHANGED.value], limit=HISTORY
    )
    for event in await uow.events.search(query):
        bundle, version = event.data.get("bundle"), event.data.get("version")
        if isinstance(bundle, str) and isinstance(version, str) and (bundle, version) != current:
            return bundle, version
    return None
