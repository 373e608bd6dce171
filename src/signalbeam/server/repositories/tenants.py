"""Tenants: the one aggregate that is not itself tenant-scoped."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from signalbeam.server.db.models import Tenant


async def get_by_slug(session: AsyncSession, slug: str) -> Tenant | None:
    """The tenant with this slug, if any."""
    return await session.scalar(select(Tenant).where(Tenant.slug == slug))


async def add(session: AsyncSession, slug: str, name: str) -> Tenant:
    """Create a tenant."""
    tenant = Tenant(slug=slug, name=name, created_at=datetime.now(UTC))
    session.add(tenant)
    await session.flush()
    return tenant


async def list_all(session: AsyncSession) -> list[Tenant]:
    """Every tenant, oldest first."""
    return list(await session.scalars(select(Tenant).order_by(Tenant.id)))
