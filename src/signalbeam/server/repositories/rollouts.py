"""Rollouts of one tenant, saved with a revision check so a stale writer never wins."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from signalbeam.server.db.models import Rollout, Tenant
from signalbeam.server.repositories.base import TenantRepository


class StaleRollout(Exception):
    """Someone saved the rollout since it was read; read it again and decide again."""


class RolloutRepository(TenantRepository):
    """Rollouts of one tenant."""

    def _scoped(self) -> Select[Rollout]:
        return select(Rollout).where(Rollout.tenant_id == self.tenant_id)

    async def get(self, rollout_id: int) -> Rollout | None:
        return await self.session.scalar(self._scoped().where(Rollout.id == rollout_id))

    async def search(self, status: str | None = None, limit: int = 100) -> list[Rollout]:
        """Newest first, optionally only those in one status."""
        query = self._scoped().order_by(Rollout.id.desc()).limit(limit)
        if status is not None:
            query = query.where(Rollout.status == status)
        return list(await self.session.scalars(query))

    async def active(self) -> list[Rollout]:
        """Every rollout that still holds its devices, oldest first."""
        query = self._scoped().where(Rollout.active.is_(True)).order_by(Rollout.id)
        return list(await self.session.scalars(query))

    async def add(self, rollout: Rollout) -> Rollout:
        rollout.tenant_id = self.tenant_id
        self.session.add(rollout)
        await self.session.flush()
        return rollout

    async def save(
        self, rollout: Rollout, state: dict[str, Any], status: str, active: bool, at: datetime
    ) -> None:
        """Store a new state if nobody else did since `rollout` was read; else `StaleRollout`."""
        statement = (
            update(Rollout)
            .where(
                Rollout.tenant_id == self.tenant_id,
                Rollout.id == rollout.id,
                Rollout.revision == rollout.revision,
            )
            .values(
                state=state,
                status=status,
                active=active,
                updated_at=at,
                revision=rollout.revision + 1,
            )
            .execution_options(synchronize_session=False)
        )
        result = await self.session.execute(statement)
        assert isinstance(result, CursorResult)
        if result.rowcount != 1:
            raise StaleRollout(f"rollout {rollout.id} changed while this step was deciding")

    async def lock_tenant(self) -> None:
        """Serialise rollout creation in this tenant until the transaction ends.

        Two overlapping rollouts created at once would each pass the exclusivity check; a
        write to the tenant row takes its lock (PostgreSQL) or the database's (SQLite) first.
        """
        await self.session.execute(
            update(Tenant).where(Tenant.id == self.tenant_id).values(slug=Tenant.slug)
        )


async def active_ids(session: AsyncSession) -> list[tuple[int, int]]:
    """(rollout id, tenant id) of every active rollout in every tenant, for the engine."""
    query = select(Rollout.id, Rollout.tenant_id).where(Rollout.active.is_(True))
    return [(rollout_id, tenant_id) for rollout_id, tenant_id in await session.execute(query)]
