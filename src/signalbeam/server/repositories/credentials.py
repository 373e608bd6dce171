"""Look-ups by secret hash: how a bearer token finds its tenant before any tenant is known.

These are the only queries that do not start from a tenant; each returns the row
whose hash matches, and the caller then builds tenant-bound repositories from it.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from signalbeam.server.db.models import ApiToken, EnrollmentToken, User


async def api_token(session: AsyncSession, token_hash: str) -> tuple[ApiToken, User] | None:
    """The API token and its user for this hash."""
    query = (
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == token_hash)
    )
    row = (await session.execute(query)).first()
    return (row[0], row[1]) if row else None


async def enrollment_token(session: AsyncSession, token_hash: str) -> EnrollmentToken | None:
    """The enrollment token for this hash."""
    query = select(EnrollmentToken).where(EnrollmentToken.token_hash == token_hash)
    return await session.scalar(query)
