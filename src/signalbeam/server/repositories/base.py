"""The tenant-bound repository base."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession


class TenantRepository:
    """A repository whose every query is confined to one tenant."""

    def __init__(self, session: AsyncSession, tenant_id: int) -> None:
        self.session = session
        self.tenant_id = tenant_id
