"""Fleet-wide counts for the dashboard: how many devices are in each presence and apply status."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute

from signalbeam.server.db.models import Device, Group
from signalbeam.server.repositories.base import TenantRepository


class FleetRepository(TenantRepository):
    """Aggregates over one tenant's live (not decommissioned) devices."""

    async def presence_counts(self) -> dict[str, int]:
        """Live devices per presence value (new, online, offline)."""
        return await self._counts(Device.presence)

    async def status_counts(self) -> dict[str, int]:
        """Live devices per reported apply status (idle, applying, running, degraded, failed)."""
        return await self._counts(Device.reported_status)

    async def group_names(self, kind: str | None = None) -> list[str]:
        """Names of the tenant's groups (of one kind, if given), without counting members."""
        statement = select(Group.name).where(Group.tenant_id == self.tenant_id)
        if kind is not None:
            statement = statement.where(Group.kind == kind)
        return list(await self.session.scalars(statement.order_by(Group.name)))

    async def _counts(self, column: InstrumentedAttribute[str | None]) -> dict[str, int]:
        # Both columns are indexed together with tenant_id, so these stay cheap at 10,000 devices.
        statement = (
            select(column, func.count())
            .where(Device.tenant_id == self.tenant_id, Device.decommissioned_at.is_(None))
            .group_by(column)
        )
        rows = (await self.session.execute(statement)).all()
        return {str(value): int(count) for value, count in rows if value is not None}
