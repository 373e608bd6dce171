"""Login, users and API tokens."""

from __future__ import annotations

from fastapi import APIRouter, Response

from signalbeam.domain.durations import parse_duration
from signalbeam.server.api.deps import CurrentActor, RuntimeDep
from signalbeam.server.api.management.v1 import convert, schemas
from signalbeam.server.api.management.v1.field_rules import TokenId
from signalbeam.server.services import users as user_service

router = APIRouter(tags=["users"])


@router.post("/auth/login", response_model=schemas.ApiTokenCreated)
async def login(body: schemas.LoginRequest, runtime: RuntimeDep) -> schemas.ApiTokenCreated:
    """Exchange a username and password for a new API token (valid 30 days)."""
    issued = await user_service.login(
        runtime, body.tenant, body.username, body.password, body.token_name
    )
    return schemas.ApiTokenCreated(
        **convert.api_token(issued.token).model_dump(), token=issued.secret
    )


@router.get("/me", response_model=schemas.MePublic)
async def me(actor: CurrentActor) -> schemas.MePublic:
    """Who the API token belongs to."""
    return schemas.MePublic(username=actor.name, role=actor.role, tenant_id=actor.tenant_id)


@router.get("/users", response_model=list[schemas.UserPublic])
async def list_users(runtime: RuntimeDep, actor: CurrentActor) -> list[schemas.UserPublic]:
    """Users of your tenant."""
    return [convert.user(u) for u in await user_service.list_users(runtime, actor)]


@router.post("/users", response_model=schemas.UserPublic, status_code=201)
async def create_user(
    body: schemas.UserCreate, runtime: RuntimeDep, actor: CurrentActor
) -> schemas.UserPublic:
    """Add a user (admins only)."""
    created = await user_service.create_user(
        runtime, actor, body.username, body.role, body.password
    )
    return convert.user(created)


@router.put("/users/{username}/password", status_code=204)
async def set_password(
    username: str, body: schemas.PasswordSet, runtime: RuntimeDep, actor: CurrentActor
) -> Response:
    """Set a password: your own, or anyone's as an admin."""
    await user_service.set_password(runtime, actor, username, body.password)
    return Response(status_code=204)


@router.get("/api-tokens", response_model=list[schemas.ApiTokenPublic])
async def list_tokens(runtime: RuntimeDep, actor: CurrentActor) -> list[schemas.ApiTokenPublic]:
    """Your API tokens (never their secrets)."""
    return [convert.api_token(t) for t in await user_service.list_tokens(runtime, actor)]


@router.post("/api-tokens", response_model=schemas.ApiTokenCreated, status_code=201)
async def create_token(
    body: schemas.ApiTokenCreate, runtime: RuntimeDep, actor: CurrentActor
) -> schemas.ApiTokenCreated:
    """A new API token for yourself, shown once."""
    expires = (
        parse_duration(body.expires_in, field="expires_in") if body.expires_in is not None else None
    )
    issued = await user_service.create_token(runtime, actor, body.name, expires)
    return schemas.ApiTokenCreated(
        **convert.api_token(issued.token).model_dump(), token=issued.secret
    )


@router.delete("/api-tokens/{token_id}", status_code=204)
async def revoke_token(token_id: TokenId, runtime: RuntimeDep, actor: CurrentActor) -> Response:
    """Revoke an API token."""
    await user_service.revoke_token(runtime, actor, token_id)
    return Response(status_code=204)
