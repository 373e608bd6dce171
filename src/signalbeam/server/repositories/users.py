"""Users and their API tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from signalbeam.server.db.models import ApiToken, User
from signalbeam.server.repositories.base import TenantRepository


class UserRepository(TenantRepository):
    """Users of one tenant."""

    async def get_by_username(self, username: str) -> User | None:
        return await self.session.scalar(
            select(User).where(User.tenant_id == self.tenant_id, User.username == username)
        )

    async def get(self, user_id: int) -> User | None:
        return await self.session.scalar(
            select(User).where(User.tenant_id == self.tenant_id, User.id == user_id)
        )

    async def all(self) -> list[User]:
        query = select(User).where(User.tenant_id == self.tenant_id).order_by(User.username)
        return list(await self.session.scalars(query))

    async def add(self, user: User) -> User:
        user.tenant_id = self.tenant_id
        self.session.add(user)
        await self.session.flush()
        return user


class ApiTokenRepository(TenantRepository):
    """API tokens of one tenant's users."""

    async def add(self, token: ApiToken) -> ApiToken:
        token.tenant_id = self.tenant_id
        self.session.add(token)
        await self.session.flush()
        return token

    async def list_for_user(self, user_id: int) -> list[ApiToken]:
        query = select(ApiToken).where(
            ApiToken.tenant_id == self.tenant_id, ApiToken.user_id == user_id
        )
        return list(await self.session.scalars(query.order_by(ApiToken.id)))

    async def get(self, token_id: int) -> ApiToken | None:
        return await self.session.scalar(
            select(ApiToken).where(ApiToken.tenant_id == self.tenant_id, ApiToken.id == token_id)
        )

    async def revoke(self, token_id: int, when: datetime) -> None:
        await self.session.execute(
            update(ApiToken)
            .where(ApiToken.tenant_id == self.tenant_id, ApiToken.id == token_id)
            .values(revoked_at=when)
        )
