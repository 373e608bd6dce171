"""Applies desired states in the background, so a slow update never holds up a heartbeat."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from signalbeam.agent.client import one_line
from signalbeam.agent.config_layers import section_digest
from signalbeam.agent.reconciler import Reconciler
from signalbeam.agent.wire import DesiredState, ReportedConfig, ReportedState
from signalbeam.domain.model import ApplyStatus

log = logging.getLogger(__name__)

Reported = Callable[[ReportedState, ReportedState], Awaitable[None]]


class Applier:
    """Runs the reconciler on the newest desired state, one apply at a time.

    While an apply runs, `reported` says `applying` for the new generation and names what
    still runs. A desired state that arrives meanwhile is applied next; the ones in between
    are skipped, since only the newest matters.
    """

    def __init__(self, reconciler: Reconciler, on_reported: Reported) -> None:
        self.reconciler = reconciler
        self.reported = ReportedState()
        self._on_reported = on_reported
        self._next: DesiredState | None = None
        self._wake = asyncio.Event()
        self._busy = False

    @property
    def busy(self) -> bool:
        """True while a desired state is being applied or waits to be."""
        return self._busy or self._next is not None

    def want(self, desired: DesiredState) -> None:
        """Apply `desired` as soon as the current apply (if any) is done."""
        self._next = desired
        self._wake.set()

    async def run(self) -> None:
        """Apply desired states as they come, until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            desired, self._next = self._next, None
            if desired is None:
                continue
            self._busy = True
            try:
                await self._apply(desired)
            finally:
                self._busy = False

    async def _apply(self, desired: DesiredState) -> None:
        applying = msgspec.structs.replace(
            self.reported,
            generation=max(0, desired.generation),
            status=ApplyStatus.APPLYING.value if desired.spec else "idle",
            reason=None,
            config=applying_config(self.reported.config, desired.spec),
        )
        await self._set(applying)
        try:
            reported = await self.reconciler.apply(desired.generation, desired.spec)
        except Exception as err:  # a reconciler's failure is reported, never fatal
            reason = one_line(f"{type(err).__name__}: {err}", 2000)
            log.exception("applying desired state generation %d failed", desired.generation)
            reported = ReportedState(
                generation=max(0, desired.generation), status="failed", reason=reason
            )
        await self._set(reported)

    async def refresh(self) -> None:
        """Observe what runs between applies, so crash loops and recoveries get reported."""
        if self.busy:
            return
        try:
            reported = await self.reconciler.report()
        except Exception:  # observing must never stop the agent
            log.exception("observing what runs failed; reporting the last known state")
            return
        if reported is not None and not self.busy:
            await self._set(reported)

    async def _set(self, reported: ReportedState) -> None:
        # Told even when nothing changed: the listener decides what is news.
        before, self.reported = self.reported, reported
        await self._on_reported(before, reported)


def applying_config(current: ReportedConfig | None, spec: dict[str, Any]) -> ReportedConfig | None:
    """The config part of an `applying` report: the new digest while it is being applied."""
    digest = section_digest(spec.get("config"))
    if digest is None or (
        current is not None and (current.status, current.digest) == ("applied", digest)
    ):
        return current
    return ReportedConfig(digest=digest, status="applying")
