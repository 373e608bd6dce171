"""The fleet at a glance: counts the dashboard shows above the device table."""

from __future__ import annotations

from dataclasses import dataclass

from signalbeam.domain.model import ApplyStatus, GroupKind, Presence
from signalbeam.server.repositories.fleet import FleetRepository
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.context import Actor


@dataclass(frozen=True)
class FleetSummary:
    """How many live devices are online, offline, new, updating and failing."""

    total: int
    online: int
    offline: int
    new: int
    updating: int
    failing: int


async def summary(runtime: Runtime, actor: Actor) -> FleetSummary:
    """Counts over the actor's tenant; any role may read them."""
    async with runtime.unit_of_work(actor) as uow:
        fleet = FleetRepository(uow.session, actor.tenant_id)
        presence = await fleet.presence_counts()
        status = await fleet.status_counts()
    return FleetSummary(
        total=sum(presence.values()),
        online=presence.get(Presence.ONLINE, 0),
        offline=presence.get(Presence.OFFLINE, 0),
        new=presence.get(Presence.NEW, 0),
        updating=status.get(ApplyStatus.APPLYING, 0),
        # Degraded counts as failing: the bundle runs but something in it keeps breaking.
        failing=status.get(ApplyStatus.FAILED, 0) + status.get(ApplyStatus.DEGRADED, 0),
    )


async def group_names(runtime: Runtime, actor: Actor, kind: GroupKind | None = None) -> list[str]:
    """Group names for pickers and filters: cheap, unlike listing groups with member counts."""
    async with runtime.unit_of_work(actor) as uow:
        return await FleetRepository(uow.session, actor.tenant_id).group_names(kind)
