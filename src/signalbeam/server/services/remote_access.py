"""The tenant's remote-access policy: read by everyone, changed by admins, every change recorded."""

from __future__ import annotations

from collections.abc import Sequence

from signalbeam.domain.model import EventType, Role
from signalbeam.domain.remote_access import RemoteAccessPolicy, check_allow_rules
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.context import Actor
from signalbeam.server.services.remote_sessions import remote_access_policy
from signalbeam.server.services.signing import ensure_trust


async def current(runtime: Runtime, actor: Actor) -> RemoteAccessPolicy:
    """The tenant's remote-access settings."""
    async with runtime.unit_of_work(actor) as uow:
        return await remote_access_policy(uow)


async def change(
    runtime: Runtime, actor: Actor, enabled: bool, exec_allow: Sequence[str]
) -> RemoteAccessPolicy:
    """Turn remote exec/shell on or off (admins only), with an optional exec allow-list."""
    actor.require(Role.ADMIN)
    rules = check_allow_rules(exec_allow)
    async with runtime.unit_of_work(actor) as uow:
        await ensure_trust(uow)  # the policy row is created with the tenant's trust
        row = await uow.signing.policy(for_update=True)
        assert row is not None
        row.remote_access, row.exec_allow = enabled, list(rules)
        limited = f", limited to {', '.join(rules)}" if rules else ""
        state = "on" if enabled else "off"
        uow.record(
            EventType.REMOTE_ACCESS_CHANGED,
            f"{actor.name} turned remote access {state}{limited}",
            data={"enabled": enabled, "exec_allow": list(rules)},
        )
        await uow.commit()
    return RemoteAccessPolicy(enabled=enabled, exec_allow=rules)
