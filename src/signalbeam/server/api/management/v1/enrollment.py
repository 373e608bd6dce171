"""Enrollment tokens."""

from __future__ import annotations

import shlex

from fastapi import APIRouter

from signalbeam.domain.durations import parse_duration
from signalbeam.server.api.deps import CurrentActor, RuntimeDep
from signalbeam.server.api.management.v1 import convert, schemas
from signalbeam.server.api.management.v1.field_rules import TokenId
from signalbeam.server.services import enrollment
from signalbeam.server.services.enrollment import TokenSpec

router = APIRouter(prefix="/enrollment-tokens", tags=["enrollment"])


def install_command(server_url: str, token: str) -> str:
    """The one line a device runs to install the agent and join."""
    return (
        "pip install signalbeam && signalbeam-agent register "
        f"--server {shlex.quote(server_url)} --token {shlex.quote(token)} && signalbeam-agent run"
    )


@router.post("", response_model=schemas.EnrollmentTokenCreated, status_code=201)
async def create(
    body: schemas.EnrollmentTokenCreate, runtime: RuntimeDep, actor: CurrentActor
) -> schemas.EnrollmentTokenCreated:
    """Create an enrollment token; its secret is shown once."""
    spec = TokenSpec(
        description=body.description,
        expires_in=parse_duration(body.expires_in, field="expires_in")
        if body.expires_in is not None
        else None,
        max_uses=body.max_uses,
        labels=body.labels,
        group=body.group,
    )
    created = await enrollment.create_token(runtime, actor, spec)
    return schemas.EnrollmentTokenCreated(
        **convert.enrollment_token(created.token).model_dump(),
        token=created.secret,
        install_command=install_command(runtime.settings.base_url, created.secret),
    )


@router.get("", response_model=list[schemas.EnrollmentTokenPublic])
async def list_tokens(
    runtime: RuntimeDep, actor: CurrentActor
) -> list[schemas.EnrollmentTokenPublic]:
    """Enrollment tokens of your tenant, newest first."""
    return [convert.enrollment_token(t) for t in await enrollment.list_tokens(runtime, actor)]


@router.delete("/{token_id}", response_model=schemas.EnrollmentTokenPublic)
async def revoke(
    token_id: TokenId, runtime: RuntimeDep, actor: CurrentActor
) -> schemas.EnrollmentTokenPublic:
    """Revoke an enrollment token; enrolled devices are not affected."""
    return convert.enrollment_token(await enrollment.revoke_token(runtime, actor, token_id))
