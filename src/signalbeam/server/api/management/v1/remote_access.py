"""The tenant's remote-access policy: off until an admin turns it on."""

from __future__ import annotations

from fastapi import APIRouter

from signalbeam.domain.remote_access import RemoteAccessPolicy
from signalbeam.server.api.deps import CurrentActor, RuntimeDep
from signalbeam.server.api.management.v1.session_schemas import (
    RemoteAccessPublic,
    RemoteAccessUpdate,
)
from signalbeam.server.services import remote_access

router = APIRouter(prefix="/remote-access", tags=["sessions"])


@router.get("", response_model=RemoteAccessPublic)
async def show(runtime: RuntimeDep, actor: CurrentActor) -> RemoteAccessPublic:
    """Whether operators may exec and open shells on this tenant's devices."""
    return _public(await remote_access.current(runtime, actor))


@router.put("", response_model=RemoteAccessPublic)
async def change(
    body: RemoteAccessUpdate, runtime: RuntimeDep, actor: CurrentActor
) -> RemoteAccessPublic:
    """Turn remote exec and shells on or off (admins); devices must allow it too."""
    policy = await remote_access.change(runtime, actor, body.enabled, body.exec_allow)
    return _public(policy)


def _public(policy: RemoteAccessPolicy) -> RemoteAccessPublic:
    return RemoteAccessPublic(enabled=policy.enabled, exec_allow=list(policy.exec_allow))
