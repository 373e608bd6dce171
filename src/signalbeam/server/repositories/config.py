"""Config layer versions, and the memberships that say which layers reach which device."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, delete, func, select, tuple_

from signalbeam.server.db.models import ConfigLayer, Device, GroupMember
from signalbeam.server.repositories.base import TenantRepository

# Names per IN list: well under SQLite's limit on bound parameters.
CHUNK = 2000
# The device columns delivery needs: who, what labels (dynamic groups), what it should run
# and what it reported (config status).
DEVICE_COLUMNS = (
    Device.id,
    Device.device_id,
    Device.labels,
    Device.desired_state,
    Device.reported_state,
)

# Only what config status reads, extracted by the database: whole documents are kilobytes
# each, and a group's status is asked for often (a dashboard tab, `config status`, a script).
STATUS_COLUMNS = (
    Device.desired_state[("config", "digest")].as_string(),
    Device.reported_state["config"],
)


class ConfigRepository(TenantRepository):
    """Config layers of one tenant."""

    def _scoped(self, scope: str, name: str) -> Any:
        return select(ConfigLayer).where(
            ConfigLayer.tenant_id == self.tenant_id,
            ConfigLayer.scope == scope,
            ConfigLayer.name == name,
        )

    async def latest(self, scope: str, name: str) -> ConfigLayer | None:
        query = self._scoped(scope, name).order_by(ConfigLayer.version.desc()).limit(1)
        found: ConfigLayer | None = await self.session.scalar(query)
        return found

    async def version(self, scope: str, name: str, version: int) -> ConfigLayer | None:
        found: ConfigLayer | None = await self.session.scalar(
            self._scoped(scope, name).where(ConfigLayer.version == version)
        )
        return found

    async def history(
        self, scope: str, name: str, limit: int, offset: int
    ) -> tuple[list[ConfigLayer], int]:
        """Versions newest first (one more than `limit`, to diff the last against), and the total."""
        count = select(func.count()).where(
            ConfigLayer.tenant_id == self.tenant_id,
            ConfigLayer.scope == scope,
            ConfigLayer.name == name,
        )
        total = int(await self.session.scalar(count) or 0)
        query = self._scoped(scope, name).order_by(ConfigLayer.version.desc())
        rows = await self.session.scalars(query.limit(limit + 1).offset(offset))
        return list(rows), total

    async def add(self, layer: ConfigLayer) -> ConfigLayer:
        layer.tenant_id = self.tenant_id
        self.session.add(layer)
        await self.session.flush()
        return layer

    async def drop(self, scope: str, name: str) -> None:
        """Every version of one layer (a deleted group's: a new group of that name starts empty)."""
        await self.session.execute(
            delete(ConfigLayer).where(
                ConfigLayer.tenant_id == self.tenant_id,
                ConfigLayer.scope == scope,
                ConfigLayer.name == name,
            )
        )

    async def current(self, scope: str, names: Sequence[str] | None = None) -> list[ConfigLayer]:
        """The latest version of every layer of `scope` (only those `names`, when given)."""
        found: list[ConfigLayer] = []
        if names is None:
            return await self._current(scope, None)
        for start in range(0, len(names), CHUNK):
            found += await self._current(scope, names[start : start + CHUNK])
        return found

    async def _current(self, scope: str, names: Sequence[str] | None) -> list[ConfigLayer]:
        newest = select(ConfigLayer.name, func.max(ConfigLayer.version)).where(
            ConfigLayer.tenant_id == self.tenant_id, ConfigLayer.scope == scope
        )
        if names is not None:
            newest = newest.where(ConfigLayer.name.in_(names))
        newest = newest.group_by(ConfigLayer.name)
        query = select(ConfigLayer).where(
            ConfigLayer.tenant_id == self.tenant_id,
            ConfigLayer.scope == scope,
            tuple_(ConfigLayer.name, ConfigLayer.version).in_(newest),
        )
        return list(await self.session.scalars(query))

    async def static_members(self, group_ids: Sequence[int]) -> dict[int, set[int]]:
        """Device pks of each of these static groups."""
        members: dict[int, set[int]] = {group_id: set() for group_id in group_ids}
        if not group_ids:
            return members
        query = select(GroupMember.group_id, GroupMember.device_pk).where(
            GroupMember.group_id.in_(group_ids)
        )
        for group_id, device_pk in (await self.session.execute(query)).all():
            members[group_id].add(device_pk)
        return members

    async def statuses(self, device_ids: Sequence[str]) -> list[tuple[str | None, Any]]:
        """Per live device: the config digest it should apply, and its `reported.config`."""
        base = select(*STATUS_COLUMNS).where(
            Device.tenant_id == self.tenant_id, Device.decommissioned_at.is_(None)
        )
        found: list[tuple[str | None, Any]] = []
        for start in range(0, len(device_ids), CHUNK):
            chunk = device_ids[start : start + CHUNK]
            rows = await self.session.execute(base.where(Device.device_id.in_(chunk)))
            found += [(wanted, report) for wanted, report in rows]
        return found

    async def devices(self, device_ids: Sequence[str] | None) -> list[Row[Any]]:
        """Live devices (all of the tenant's when `device_ids` is None), delivery's columns only."""
        base = select(*DEVICE_COLUMNS).where(
            Device.tenant_id == self.tenant_id, Device.decommissioned_at.is_(None)
        )
        if device_ids is None:
            return list((await self.session.execute(base.order_by(Device.device_id))).all())
        rows: list[Row[Any]] = []
        for start in range(0, len(device_ids), CHUNK):
            chunk = device_ids[start : start + CHUNK]
            rows += (await self.session.execute(base.where(Device.device_id.in_(chunk)))).all()
        return rows
