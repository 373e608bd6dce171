"""Device credential look-ups that miss the cache, answered many to one query.

After a restart, and whenever cached entries expire (every 15-30 s on PostgreSQL, where other
replicas may change devices), syncs that miss the device cache arrive hundreds per second.
One session and one SELECT each made them the largest database cost of syncing. Instead,
misses queued during one turn of the event loop share one `credential_hash IN (...)` query;
a miss in a quiet moment still goes to the database at once.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from signalbeam.server.db.models import Device
from signalbeam.server.secrets_box import SecretsBox
from signalbeam.server.services.config_sealing import open_document
from signalbeam.server.services.device_cache import DevicePrincipal

# Bound on one IN list (SQLite allows 32,766 bound parameters; PostgreSQL 65,535).
MAX_BATCH = 500


_COLUMNS = (
    Device.credential_hash,
    Device.id,
    Device.tenant_id,
    Device.device_id,
    Device.desired_generation,
    Device.desired_state,
)


class CredentialLookups:
    """Coalesces concurrent look-ups by credential hash into batched queries."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], secrets: SecretsBox) -> None:
        self._sessions = sessions
        self._secrets = secrets
        self._waiting: dict[str, asyncio.Future[DevicePrincipal | None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def principal(self, credential_hash: str) -> DevicePrincipal | None:
        """The live device holding this credential hash; None when none does (or it was
        decommissioned)."""
        future = self._waiting.get(credential_hash)
        if future is None:
            loop = asyncio.get_running_loop()
            future = loop.create_future()
            if not self._waiting:
                # The first miss of this loop turn schedules the query; the misses that
                # arrive before it runs join the same IN list.
                loop.call_soon(self._start)
            self._waiting[credential_hash] = future
        return await asyncio.shield(future)

    def _start(self) -> None:
        waiting, self._waiting = self._waiting, {}
        items = list(waiting.items())
        for start in range(0, len(items), MAX_BATCH):
            task = asyncio.create_task(self._answer(dict(items[start : start + MAX_BATCH])))
            # Held until done: the loop keeps only weak references to tasks.
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _answer(self, waiting: dict[str, asyncio.Future[DevicePrincipal | None]]) -> None:
        try:
            async with self._sessions() as session:
                query = select(*_COLUMNS).where(
                    Device.credential_hash.in_(list(waiting)), Device.decommissioned_at.is_(None)
                )
                rows = (await session.execute(query)).all()
            found = {
                row.credential_hash: DevicePrincipal(
                    pk=row.id,
                    tenant_id=row.tenant_id,
                    device_id=row.device_id,
                    desired_generation=row.desired_generation,
                    # The device gets its config secrets in clear; the row keeps them sealed.
                    desired_spec=open_document(self._secrets, row.tenant_id, row.desired_state),
                )
                for row in rows
            }
        except Exception as err:  # every waiter fails the way its own query would have
            for future in waiting.values():
                if not future.done():
                    future.set_exception(err)
            return
        for credential_hash, future in waiting.items():
            if not future.done():
                future.set_result(found.get(credential_hash))
