"""Leadership of a singleton worker (rollout engine, alerts) among server processes.

A worker runs in every process but acts only while its process holds the worker's lease in
the database; another process takes over once the holder stops renewing (it died).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta

from signalbeam.server.repositories import leases
from signalbeam.server.runtime import Runtime

log = logging.getLogger(__name__)


def new_holder() -> str:
    """A name for this process's claim on a lease, unique even across restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Leadership:
    """This process's claim on one worker's lease."""

    def __init__(
        self, runtime: Runtime, name: str, what: str, ttl: timedelta, holder: str | None = None
    ) -> None:
        self.runtime = runtime
        self.name = name
        self.what = what  # for the log: "rollout engine"
        self.ttl = ttl
        self.holder = holder or new_holder()
        self.leading = False
        self._renewed = 0.0

    async def hold(self, now: datetime) -> bool:
        """Take or renew the lease; whether this process leads now."""
        # Renewing a third of the way through the lease keeps it safely held without a
        # database write every step (SQLite has one writer, and heartbeats need it).
        if self.leading and time.monotonic() - self._renewed < self.ttl.total_seconds() / 3:
            return True
        async with self.runtime.sessions() as session:
            held = await leases.acquire(session, self.name, self.holder, now, self.ttl)
        if held:
            self._renewed = time.monotonic()
        if held != self.leading:
            verb = "runs" if held else "no longer runs"
            log.info("this server (%s) %s the %s", self.holder, verb, self.what)
        self.leading = held
        return held

    async def release(self) -> None:
        """Give the lease up so another process can go on at once."""
        if not self.leading:
            return
        with contextlib.suppress(Exception):
            async with self.runtime.sessions() as session:
                await leases.release(session, self.name, self.holder, datetime.now(UTC))
        self.leading = False
