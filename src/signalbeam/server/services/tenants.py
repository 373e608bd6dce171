"""Creating tenants and their first admin, including the default one on first start."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from signalbeam.domain.errors import Conflict, InvalidInput
from signalbeam.domain.model import EventType, Role
from signalbeam.server.db.models import Tenant, User
from signalbeam.server.repositories import tenants as tenant_repo
from signalbeam.server.runtime import Runtime
from signalbeam.server.services import alert_rules
from signalbeam.server.services import users as user_service
from signalbeam.server.services.context import Actor, system_actor

DEFAULT_TENANT = "default"
FIRST_ADMIN = "admin"


@dataclass(frozen=True)
class NewTenant:
    """A freshly created tenant with its first admin and that admin's API token (shown once)."""

    tenant: Tenant
    admin: User
    admin_token: str


async def create(runtime: Runtime, slug: str, name: str, admin_username: str) -> NewTenant:
    """Create a tenant with one admin user holding a fresh API token."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", slug):
        raise InvalidInput(
            f'tenant "{slug}" is not a valid slug: use lowercase letters, digits and dashes',
            field="slug",
        )
    async with runtime.sessions() as session:
        if await tenant_repo.get_by_slug(session, slug) is not None:
            raise Conflict(f'tenant "{slug}" already exists', field="slug")
        tenant = await tenant_repo.add(session, slug, name)
        await session.commit()
    async with runtime.unit_of_work(system_actor(tenant.id)) as uow:
        admin = await uow.users.add(
            User(
                username=admin_username,
                password_hash=None,
                role=Role.ADMIN.value,
                created_at=datetime.now(UTC),
                created_by=str(uow.actor),
            )
        )
        uow.record(EventType.USER_CREATED, f"first admin {admin_username} created")
        await alert_rules.add_defaults(uow)
        actor = Actor(tenant.id, "user", admin.username, Role.ADMIN, admin.id)
        token = await user_service.issue_token(runtime, uow, actor, "first-admin", expires_in=None)
        await uow.commit()
    return NewTenant(tenant=tenant, admin=admin, admin_token=token.secret)


async def ensure_default(runtime: Runtime) -> NewTenant | None:
    """Create the default tenant and first admin unless a tenant exists; None when it did."""
    async with runtime.sessions() as session:
        if await tenant_repo.list_all(session):
            return None
    created = await create(runtime, DEFAULT_TENANT, "Default", FIRST_ADMIN)
    return created


async def by_slug(runtime: Runtime, slug: str) -> Tenant:
    """The tenant with this slug, or a clear 404."""
    async with runtime.sessions() as session:
        tenant = await tenant_repo.get_by_slug(session, slug)
    if tenant is None:
        raise InvalidInput(f'no tenant "{slug}" on this server', field="tenant")
    return tenant
