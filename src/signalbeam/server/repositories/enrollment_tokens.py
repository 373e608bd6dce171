"""Enrollment tokens: how devices join a tenant."""

from __future__ import annotations

from sqlalchemy import select

from signalbeam.server.db.models import EnrollmentToken
from signalbeam.server.repositories.base import TenantRepository


class EnrollmentTokenRepository(TenantRepository):
    """Enrollment tokens of one tenant."""

    async def add(self, token: EnrollmentToken) -> EnrollmentToken:
        token.tenant_id = self.tenant_id
        self.session.add(token)
        await self.session.flush()
        return token

    async def get(self, token_id: int) -> EnrollmentToken | None:
        return await self.session.scalar(
            select(EnrollmentToken).where(
                EnrollmentToken.tenant_id == self.tenant_id, EnrollmentToken.id == token_id
            )
        )

    async def all(self) -> list[EnrollmentToken]:
        query = select(EnrollmentToken).where(EnrollmentToken.tenant_id == self.tenant_id)
        return list(await self.session.scalars(query.order_by(EnrollmentToken.id.desc())))
