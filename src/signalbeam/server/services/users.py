"""Users, roles, passwords and API tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from signalbeam.domain.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from signalbeam.domain.model import EventType, Role
from signalbeam.server.db.models import ApiToken, User
from signalbeam.server.observability.tracing import traced
from signalbeam.server.repositories import credentials
from signalbeam.server.repositories import tenants as tenant_repo
from signalbeam.server.runtime import Runtime
from signalbeam.server.security import (
    API_TOKEN_PREFIX,
    hash_password,
    new_secret,
    verify_password,
)
from signalbeam.server.services.context import Actor, UnitOfWork

MIN_PASSWORD = 10


@dataclass(frozen=True)
class IssuedToken:
    """A new API token; `secret` exists only in this object and is never stored."""

    token: ApiToken
    secret: str


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(
            f"password is too short: use at least {MIN_PASSWORD} characters", field="password"
        )


async def issue_token(
    runtime: Runtime, uow: UnitOfWork, owner: Actor, name: str, expires_in: timedelta | None
) -> IssuedToken:
    """Create an API token for `owner` inside the caller's transaction."""
    assert owner.user_id is not None
    secret = new_secret(API_TOKEN_PREFIX)
    now = datetime.now(UTC)
    token = await uow.api_tokens.add(
        ApiToken(
            user_id=owner.user_id,
            name=name,
            token_hash=runtime.hasher.hash(secret),
            created_at=now,
            expires_at=now + expires_in if expires_in else None,
        )
    )
    uow.record(EventType.API_TOKEN_CREATED, f"API token {name!r} created for {owner.name}")
    return IssuedToken(token=token, secret=secret)


@traced("users.authenticate")
async def authenticate(runtime: Runtime, secret: str) -> Actor:
    """The user behind an API token, or a 401 saying how to get a valid one."""
    async with runtime.sessions() as session:
        found = await credentials.api_token(session, runtime.hasher.hash(secret))
    now = datetime.now(UTC)
    if found is None:
        raise Unauthenticated("API token not recognised; run `signalbeam login` to get a new one")
    token, user = found
    if token.revoked_at is not None:
        raise Unauthenticated("API token was revoked; run `signalbeam login` to get a new one")
    if token.expires_at is not None and token.expires_at <= now:
        raise Unauthenticated("API token has expired; run `signalbeam login` to get a new one")
    if user.disabled_at is not None:
        raise Unauthenticated(f"user {user.username} is disabled; ask an admin of your tenant")
    return Actor(user.tenant_id, "user", user.username, Role(user.role), user.id)


async def login(
    runtime: Runtime, tenant_slug: str, username: str, password: str, token_name: str
) -> IssuedToken:
    """Exchange a username and password for a new API token."""
    async with runtime.sessions() as session:
        tenant = await tenant_repo.get_by_slug(session, tenant_slug)
    failure = Unauthenticated("wrong tenant, username or password")
    if tenant is None:
        verify_password(password, None)
        raise failure
    probe = Actor(tenant.id, "user", username)
    async with runtime.unit_of_work(probe) as uow:
        user = await uow.users.get_by_username(username)
        if not verify_password(password, user.password_hash if user else None) or user is None:
            raise failure
        if user.disabled_at is not None:
            raise Unauthenticated(f"user {username} is disabled; ask an admin of your tenant")
        owner = Actor(tenant.id, "user", user.username, Role(user.role), user.id)
        issued = await issue_token(runtime, uow, owner, token_name, timedelta(days=30))
        await uow.commit()
    return issued


async def create_user(
    runtime: Runtime, actor: Actor, username: str, role: Role, password: str | None
) -> User:
    """Add a user to the actor's tenant (admins only)."""
    actor.require(Role.ADMIN)
    if password is not None:
        _check_password(password)
    async with runtime.unit_of_work(actor) as uow:
        if await uow.users.get_by_username(username) is not None:
            raise Conflict(f"user {username} already exists in this tenant", field="username")
        user = await uow.users.add(
            User(
                username=username,
                password_hash=hash_password(password) if password else None,
                role=role.value,
                created_at=datetime.now(UTC),
                created_by=str(actor),
            )
        )
        uow.record(EventType.USER_CREATED, f"user {username} created with role {role.value}")
        await uow.commit()
    return user


async def set_password(runtime: Runtime, actor: Actor, username: str, password: str) -> None:
    """Set a user's password: your own, or anyone's if you are an admin."""
    if username != actor.name:
        actor.require(Role.ADMIN)
    _check_password(password)
    async with runtime.unit_of_work(actor) as uow:
        user = await uow.users.get_by_username(username)
        if user is None:
            raise NotFound(f"no user {username} in this tenant", field="username")
        user.password_hash = hash_password(password)
        await uow.commit()


async def list_users(runtime: Runtime, actor: Actor) -> list[User]:
    """Every user of the actor's tenant."""
    async with runtime.unit_of_work(actor) as uow:
        return await uow.users.all()


async def create_token(
    runtime: Runtime, actor: Actor, name: str, expires_in: timedelta | None
) -> IssuedToken:
    """A new API token for the calling user."""
    async with runtime.unit_of_work(actor) as uow:
        issued = await issue_token(runtime, uow, actor, name, expires_in)
        await uow.commit()
    return issued


async def list_tokens(runtime: Runtime, actor: Actor) -> list[ApiToken]:
    """The calling user's API tokens (never their secrets)."""
    assert actor.user_id is not None
    async with runtime.unit_of_work(actor) as uow:
        return await uow.api_tokens.list_for_user(actor.user_id)


async def revoke_token(runtime: Runtime, actor: Actor, token_id: int) -> None:
    """Revoke one of your own API tokens (admins may revoke any in the tenant)."""
    async with runtime.unit_of_work(actor) as uow:
        token = await uow.api_tokens.get(token_id)
        if token is None or (token.user_id != actor.user_id and not actor.role.allows(Role.ADMIN)):
            raise NotFound(f"no API token {token_id} of yours", field="token_id")
        await uow.api_tokens.revoke(token_id, datetime.now(UTC))
        uow.record(EventType.API_TOKEN_REVOKED, f"API token {token.name!r} revoked")
        await uow.commit()
