"""Pairs an operator's session with the device's own connection, in this process.

A session is offered when the operator asks for it, handed to the device on its held watch,
and lives until both sides have attached and the relay ends, or until nobody comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket

from signalbeam.server.services.context import Actor
from signalbeam.server.services.watch import DesiredStateWatchers

# How long an offer waits for the operator to attach and the device to connect.
OFFER_SECONDS = 30.0
# A device handed an offer on its watch is told again only if it has not connected after this
# (the watch answer may have been lost), so a watch never spins on the same offer.
REOFFER_SECONDS = 3.0


@dataclass
class OfferedSession:
    """One session between its request and its end."""

    id: str
    tenant_id: int
    device_pk: int
    device_id: str
    actor: Actor
    kind: str
    open_frame: str
    # What the activity log says about it: unit, command, tty.
    summary: dict[str, Any]
    offered_at: float = field(default_factory=time.monotonic)
    device: asyncio.Future[WebSocket] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    # Set to stop the relay (server shutdown, expiry); `finished` once it is over.
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    operator_attached: bool = False
    # (cols, rows) of a terminal session; its output is recorded.
    terminal: tuple[int, int] | None = None


class SessionBroker:
    """Offered and running sessions by id, and the offers each device has not yet taken."""

    def __init__(self, watchers: DesiredStateWatchers) -> None:
        self._watchers = watchers
        self._sessions: dict[str, OfferedSession] = {}
        self._untaken: dict[int, dict[str, float]] = defaultdict(dict)
        self._closing = False
        self._idle = asyncio.Event()
        self._idle.set()

    @staticmethod
    def new_id() -> str:
        """A session id nobody can guess (it names the device's WebSocket)."""
        return secrets.token_urlsafe(18)

    def offer(self, session: OfferedSession) -> None:
        """Make the session known and wake the device's watch so it connects."""
        self._sessions[session.id] = session
        self._idle.clear()
        self._untaken[session.device_pk][session.id] = 0.0
        asyncio.get_running_loop().call_later(OFFER_SECONDS, self._expire, session.id)
        self._watchers.poke(session.device_pk)

    def hand_out(self, device_pk: int) -> list[str]:
        """Session ids for this device's watch answer: offers it has not connected for yet."""
        untaken = self._untaken.get(device_pk)
        if not untaken:
            return []
        now = time.monotonic()
        due = sorted(sid for sid, handed in untaken.items() if now - handed >= REOFFER_SECONDS)
        for session_id in due:
            untaken[session_id] = now
        return due

    def claim_for_device(self, session_id: str, device_pk: int) -> OfferedSession | None:
        """The session this device connects for, once; None if it is not this device's."""
        session = self._sessions.get(session_id)
        if session is None or session.device_pk != device_pk or session.device.done():
            return None
        self._forget_offer(session)
        return session

    def claim_for_operator(self, session_id: str, actor: Actor) -> OfferedSession | None:
        """The session this operator asked for, once; None for anybody else's."""
        session = self._sessions.get(session_id)
        if (
            session is None
            or session.operator_attached
            or session.tenant_id != actor.tenant_id
            or session.actor.name != actor.name
        ):
            return None
        session.operator_attached = True
        return session

    def end(self, session: OfferedSession) -> None:
        """The relay is over: let the device's connection go and forget the session."""
        session.ended.set()
        session.finished.set()
        self._forget_offer(session)
        self._sessions.pop(session.id, None)
        if not self._sessions:
            self._idle.set()

    def close_all(self) -> None:
        """Server shutdown: end every session (each relay tells its operator why)."""
        self._closing = True
        for session in list(self._sessions.values()):
            if not session.device.done():
                session.device.cancel()
            session.ended.set()

    async def close_and_wait(self, seconds: float) -> None:
        """End every session and give their relays up to `seconds` to say goodbye."""
        self.close_all()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._idle.wait()

    @property
    def closing(self) -> bool:
        """The server is shutting down."""
        return self._closing

    @property
    def running(self) -> int:
        """Sessions offered or relaying now."""
        return len(self._sessions)

    def _forget_offer(self, session: OfferedSession) -> None:
        untaken = self._untaken.get(session.device_pk)
        if untaken is not None:
            untaken.pop(session.id, None)
            if not untaken:
                del self._untaken[session.device_pk]

    def _expire(self, session_id: str) -> None:
        session = self._sessions.get(session_id)
        if session is not None and not (session.operator_attached and session.device.done()):
            if not session.device.done():
                session.device.cancel()
            self.end(session)
