"""Devices and their labels."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, exists, func, or_, select, true, update

from signalbeam.domain.selectors import Operator, Requirement, Selector
from signalbeam.server.db.models import Device, DeviceLabel, GroupMember
from signalbeam.server.repositories.base import TenantRepository

SORT_COLUMNS = {
    "name": Device.name,
    "device_id": Device.device_id,
    "last_seen": Device.last_seen_at,
    "presence": Device.presence,
    "enrolled": Device.enrolled_at,
}


# Devices per UPDATE: well under SQLite's limit on bound parameters.
ADVANCE_CHUNK = 2000


@dataclass(frozen=True)
class DeviceQuery:
    """Filters, sorting and paging for a device list; every filter is optional."""

    selector: Selector | None = None
    presence: str | None = None
    static_group_id: int | None = None
    search: str | None = None
    sort: str = "name"
    descending: bool = False
    limit: int = 50
    offset: int = 0
    include_decommissioned: bool = False


def requirement_clause(requirement: Requirement) -> ColumnElement[bool]:
    """SQL for one selector requirement, as an (NOT) EXISTS over the label rows."""
    label = select(DeviceLabel.device_pk).where(
        DeviceLabel.device_pk == Device.id, DeviceLabel.key == requirement.key
    )
    op = requirement.op
    if op in (Operator.EQ, Operator.NE):
        label = label.where(DeviceLabel.value == requirement.values[0])
    elif op in (Operator.IN, Operator.NOTIN):
        label = label.where(DeviceLabel.value.in_(requirement.values))
    found = exists(label)
    return ~found if op in (Operator.NE, Operator.NOTIN, Operator.NOT_EXISTS) else found


def selector_clause(selector: Selector) -> ColumnElement[bool]:
    """SQL matching every requirement of the selector (an empty selector matches all)."""
    clause: ColumnElement[bool] = true()
    for requirement in selector.requirements:
        clause = clause & requirement_clause(requirement)
    return clause


class DeviceRepository(TenantRepository):
    """Devices of one tenant."""

    def _scoped(self) -> Select[Device]:
        return select(Device).where(Device.tenant_id == self.tenant_id)

    async def get(self, device_id: str) -> Device | None:
        return await self.session.scalar(self._scoped().where(Device.device_id == device_id))

    async def get_many(self, device_ids: Sequence[str]) -> list[Device]:
        query = self._scoped().where(Device.device_id.in_(device_ids))
        return list(await self.session.scalars(query))

    async def advance_desired(
        self,
        device_ids: Sequence[str],
        spec: dict[str, Any],
        bundle: str | None,
        version: str | None,
    ) -> list[tuple[int, str, int]]:
        """Give devices a new desired state in one statement: (pk, device_id, new generation).

        One UPDATE ... RETURNING instead of loading thousands of rows: an assignment to a
        whole fleet is what makes a push fast or slow.
        """
        found: list[tuple[int, str, int]] = []
        for start in range(0, len(device_ids), ADVANCE_CHUNK):
            chunk = device_ids[start : start + ADVANCE_CHUNK]
            statement = (
                update(Device)
                .where(Device.tenant_id == self.tenant_id, Device.device_id.in_(chunk))
                .values(
                    desired_generation=Device.desired_generation + 1,
                    desired_state=spec,
                    desired_bundle=bundle,
                    desired_version=version,
                )
                .returning(Device.id, Device.device_id, Device.desired_generation)
            )
            found += [(r[0], r[1], r[2]) for r in await self.session.execute(statement)]
        return found

    async def add(self, device: Device) -> Device:
        device.tenant_id = self.tenant_id
        self.session.add(device)
        await self.session.flush()
        return device

    def _filtered(self, query: DeviceQuery) -> Select[Device]:
        statement = self._scoped()
        if not query.include_decommissioned:
            statement = statement.where(Device.decommissioned_at.is_(None))
        if query.selector is not None:
            statement = statement.where(selector_clause(query.selector))
        if query.presence is not None:
            statement = statement.where(Device.presence == query.presence)
        if query.static_group_id is not None:
            members = select(GroupMember.device_pk).where(
                GroupMember.group_id == query.static_group_id
            )
            statement = statement.where(Device.id.in_(members))
        if query.search:
            pattern = f"%{query.search.lower()}%"
            statement = statement.where(
                or_(
                    func.lower(Device.name).like(pattern),
                    func.lower(Device.device_id).like(pattern),
                )
            )
        return statement

    async def search(self, query: DeviceQuery) -> tuple[list[Device], int]:
        """One page of matching devices and the total number that match."""
        statement = self._filtered(query)
        total = await self.session.scalar(select(func.count()).select_from(statement.subquery()))
        column = SORT_COLUMNS[query.sort]
        order = column.desc() if query.descending else column.asc()
        page = statement.order_by(order, Device.device_id).limit(query.limit).offset(query.offset)
        return list(await self.session.scalars(page)), int(total or 0)

    async def matching_ids(self, query: DeviceQuery) -> list[str]:
        """Ids of every device that matches the filters (no paging), in id order."""
        statement = self._filtered(query).with_only_columns(Device.device_id)
        return list(await self.session.scalars(statement.order_by(Device.device_id)))

    async def cordoned_among(self, device_ids: Sequence[str]) -> set[str]:
        """Which of these devices are cordoned."""
        found: set[str] = set()
        for start in range(0, len(device_ids), ADVANCE_CHUNK):
            chunk = device_ids[start : start + ADVANCE_CHUNK]
            query = self._scoped().with_only_columns(Device.device_id)
            query = query.where(Device.device_id.in_(chunk), Device.cordoned_at.is_not(None))
            found.update(await self.session.scalars(query))
        return found

    async def set_cordoned(
        self, device_ids: Sequence[str], at: datetime | None, by: str | None
    ) -> list[tuple[int, str]]:
        """Cordon (`at` given) or uncordon these devices; (pk, device id) of those that changed."""
        changed: list[tuple[int, str]] = []
        already = (
            Device.cordoned_at.is_(None) if at is not None else Device.cordoned_at.is_not(None)
        )
        for start in range(0, len(device_ids), ADVANCE_CHUNK):
            statement = (
                update(Device)
                .where(
                    Device.tenant_id == self.tenant_id,
                    Device.device_id.in_(device_ids[start : start + ADVANCE_CHUNK]),
                    already,
                )
                .values(cordoned_at=at, cordoned_by=by)
                .returning(Device.id, Device.device_id)
            )
            changed += [(r[0], r[1]) for r in await self.session.execute(statement)]
        return changed

    async def replace_labels(self, device: Device, labels: Mapping[str, str]) -> None:
        """Store the device's labels in both the JSON column and the indexed label rows."""
        device.labels = dict(labels)
        await self.session.execute(delete(DeviceLabel).where(DeviceLabel.device_pk == device.id))
        self.session.add_all(
            DeviceLabel(device_pk=device.id, tenant_id=self.tenant_id, key=key, value=value)
            for key, value in labels.items()
        )
        await self.session.flush()

    async def count_download(self, pk: int, *, resumed: bool, cut: bool, sent: int) -> None:
        """Add one artifact download served to the device to its counters."""
        statement = (
            update(Device)
            .where(Device.tenant_id == self.tenant_id, Device.id == pk)
            .values(
                downloads=Device.downloads + 1,
                downloads_resumed=Device.downloads_resumed + int(resumed),
                downloads_cut=Device.downloads_cut + int(cut),
                download_bytes=Device.download_bytes + sent,
            )
        )
        await self.session.execute(statement)

    async def set_reboot_requested(self, pk: int, at: datetime | None, by: str | None) -> None:
        """Note a reboot asked for (until a new boot id arrives), or clear it (`at` None)."""
        statement = (
            update(Device)
            .where(Device.tenant_id == self.tenant_id, Device.id == pk)
            .values(reboot_requested_at=at, reboot_requested_by=by)
        )
        await self.session.execute(statement)
