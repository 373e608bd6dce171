"""Dependencies shared by routes: the runtime, the calling user and the calling device."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from signalbeam.domain.errors import Unauthenticated
from signalbeam.server.observability import tracing
from signalbeam.server.runtime import Runtime
from signalbeam.server.services import sync as sync_service
from signalbeam.server.services import users as user_service
from signalbeam.server.services.context import Actor
from signalbeam.server.services.device_cache import DevicePrincipal


async def get_runtime(request: Request) -> Runtime:
    """The runtime the app was built with."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def bearer(request: Request, what: str) -> str:
    """The bearer secret from the Authorization header, or a 401 saying how to send one."""
    return bearer_secret(request.headers.get("authorization", ""), what)


def bearer_secret(header: str, what: str) -> str:
    """The secret in an Authorization header's value, or a 401 saying how to send one."""
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthenticated(f"send `Authorization: Bearer <{what}>` with this request")
    return secret.strip()


async def current_actor(request: Request, runtime: RuntimeDep) -> Actor:
    """The user behind the request's API token."""
    actor = await user_service.authenticate(runtime, bearer(request, "API token"))
    # Which tenant a request span served, never who or with what token.
    tracing.annotate(tenant_id=actor.tenant_id)
    return actor


async def current_device(request: Request, runtime: RuntimeDep) -> DevicePrincipal:
    """The device behind the request's device credential."""
    return await sync_service.authenticate(runtime, bearer(request, "device credential"))


CurrentActor = Annotated[Actor, Depends(current_actor)]
CurrentDevice = Annotated[DevicePrincipal, Depends(current_device)]
