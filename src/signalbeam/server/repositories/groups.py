"""Groups and static group membership."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select

from signalbeam.server.db.models import Device, Group, GroupMember
from signalbeam.server.repositories.base import TenantRepository


class GroupRepository(TenantRepository):
    """Groups of one tenant."""

    async def get(self, name: str) -> Group | None:
        return await self.session.scalar(
            select(Group).where(Group.tenant_id == self.tenant_id, Group.name == name)
        )

    async def all(self) -> list[Group]:
        query = select(Group).where(Group.tenant_id == self.tenant_id).order_by(Group.name)
        return list(await self.session.scalars(query))

    async def add(self, group: Group) -> Group:
        group.tenant_id = self.tenant_id
        self.session.add(group)
        await self.session.flush()
        return group

    async def delete(self, group: Group) -> None:
        await self.session.delete(group)
        await self.session.flush()

    async def static_member_counts(self) -> dict[int, int]:
        """How many explicit members each static group of the tenant has."""
        query = (
            select(GroupMember.group_id, func.count())
            .join(Group, Group.id == GroupMember.group_id)
            .join(Device, Device.id == GroupMember.device_pk)
            .where(Group.tenant_id == self.tenant_id, Device.decommissioned_at.is_(None))
            .group_by(GroupMember.group_id)
        )
        return {group_id: count for group_id, count in (await self.session.execute(query)).all()}

    async def member_pks(self, group: Group) -> set[int]:
        query = select(GroupMember.device_pk).where(GroupMember.group_id == group.id)
        return set(await self.session.scalars(query))

    async def add_members(self, group: Group, devices: Sequence[Device]) -> None:
        existing = await self.member_pks(group)
        self.session.add_all(
            GroupMember(group_id=group.id, device_pk=d.id) for d in devices if d.id not in existing
        )
        await self.session.flush()

    async def remove_members(self, group: Group, devices: Sequence[Device]) -> None:
        await self.session.execute(
            delete(GroupMember).where(
                GroupMember.group_id == group.id,
                GroupMember.device_pk.in_([d.id for d in devices]),
            )
        )

    async def static_groups_of(self, device: Device) -> list[Group]:
        query = (
            select(Group)
            .join(GroupMember, GroupMember.group_id == Group.id)
            .where(Group.tenant_id == self.tenant_id, GroupMember.device_pk == device.id)
        )
        return list(await self.session.scalars(query.order_by(Group.name)))

    async def dynamic(self) -> list[Group]:
        query = select(Group).where(Group.tenant_id == self.tenant_id, Group.kind == "dynamic")
        return list(await self.session.scalars(query.order_by(Group.name)))
