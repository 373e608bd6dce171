"""The rollout engine worker: one server process steps every active rollout, about once a second.

It holds a lease in the database so that, with several server processes sharing PostgreSQL,
exactly one of them runs it, and another takes over once the holder stops renewing (it died).
Everything it knows lives in the database, so a restarted server simply continues.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from signalbeam.domain.model import Role
from signalbeam.domain.rollouts import Outcome, RolloutState, step
from signalbeam.server.observability import tracing
from signalbeam.server.repositories.rollouts import StaleRollout, active_ids
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.context import Actor
from signalbeam.server.services.desired import announce_desired
from signalbeam.server.services.rollout_outcomes import apply_outcome
from signalbeam.server.services.rollout_targets import current_target, held_devices, observe
from signalbeam.server.workers.leadership import Leadership

if TYPE_CHECKING:
    from opentelemetry.trace import Span

log = logging.getLogger(__name__)
LEASE = "rollout-engine"
# However often devices report, steps are at least this far apart.
MIN_GAP = 0.2


def engine_actor(tenant_id: int) -> Actor:
    """Who the activity log names for what the engine does."""
    return Actor(tenant_id=tenant_id, kind="system", name="rollout-engine", role=Role.ADMIN)


async def step_rollout(runtime: Runtime, tenant_id: int, rollout_id: int, now: datetime) -> bool:
    """Advance one rollout to `now` and store the result; True when anything changed."""
    attributes = {"signalbeam.tenant_id": tenant_id, "signalbeam.rollout_id": rollout_id}
    with tracing.span("rollout.step", attributes) as span:
        return await _step(runtime, tenant_id, rollout_id, now, span)


async def _step(
    runtime: Runtime, tenant_id: int, rollout_id: int, now: datetime, span: Span | None
) -> bool:
    async with runtime.unit_of_work(engine_actor(tenant_id)) as uow:
        row = await uow.rollouts.get(rollout_id)
        if row is None or not row.active:
            return False
        state = RolloutState.from_dict(row.state)
        others = [other for other in await uow.rollouts.active() if other.id != row.id]
        held = await held_devices(uow, others, with_targets=False)
        target = await current_target(uow, row.target)
        known = [device.device_id for device in state.devices]
        observations = await observe(uow, [*target, *known], held)
        outcome = step(state, now, target, observations)
        _note_decision(span, state, outcome)
        if outcome.state == state and not outcome.actions:
            return False
        applied = await apply_outcome(uow, row, outcome, now)
        await uow.commit()
    announce_desired(runtime, applied.pending)
    return True


def _note_decision(span: Span | None, before: RolloutState, outcome: Outcome) -> None:
    # What the step decided, so a trace shows when a wave started or a rollout halted.
    if span is None:
        return
    tracing.annotate(
        span,
        status=outcome.state.status.value,
        wave=outcome.state.wave,
        wave_started=outcome.state.wave > before.wave,
        actions=len(outcome.actions),
        changed=outcome.state != before or bool(outcome.actions),
    )


class RolloutEngine:
    """Steps active rollouts while this process holds the engine lease."""

    def __init__(
        self,
        runtime: Runtime,
        interval: timedelta | None = None,
        lease: timedelta | None = None,
        holder: str | None = None,
    ) -> None:
        self.runtime = runtime
        self.interval = (interval or runtime.settings.rollout_interval).total_seconds()
        ttl = lease or runtime.settings.rollout_lease
        self.leadership = Leadership(runtime, LEASE, "rollout engine", ttl, holder)
        self._wake = asyncio.Event()

    @property
    def leading(self) -> bool:
        """Whether this process runs the engine now."""
        return self.leadership.leading

    def poke(self) -> None:
        """Step soon: a device reported, or an operator changed something."""
        self._wake.set()

    async def run(self) -> None:
        """Step forever; give the lease up on the way out so another process can go on at once."""
        self.runtime.ingestor.listeners.append(self.poke)
        try:
            while True:
                await self.run_once()
                await self._sleep()
        finally:
            self.runtime.ingestor.listeners.remove(self.poke)
            await self.leadership.release()

    async def run_once(self) -> int:
        """Renew the lease and, holding it, step every active rollout; returns how many changed."""
        now = datetime.now(UTC)
        try:
            if not await self.leadership.hold(now):
                return 0
            return await self._step_all(now)
        except Exception:
            # A database hiccup must not stop the engine; the next step tries again.
            log.exception("rollout engine step failed; retrying in %.1fs", self.interval)
            return 0

    async def _step_all(self, now: datetime) -> int:
        async with self.runtime.sessions() as session:
            rollouts = await active_ids(session)
        changed = 0
        for rollout_id, tenant_id in rollouts:
            try:
                changed += await step_rollout(self.runtime, tenant_id, rollout_id, now)
            except StaleRollout:
                # An operator (or a previous engine) saved it meanwhile; decide again next time.
                log.info(
                    "rollout %s changed during its step; stepping it again next time", rollout_id
                )
            except Exception:
                # One broken rollout must not hold up the others; it is tried again next step.
                log.exception("rollout %s could not be stepped; retrying next step", rollout_id)
        return changed

    async def _sleep(self) -> None:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation that
        # arrives as a report wakes the engine, and the server's shutdown then never ends.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.interval):
                await self._wake.wait()
        if self._wake.is_set():
            # Reports come in bursts; a short pause lets one step take in the whole burst.
            await asyncio.sleep(MIN_GAP)
            self._wake.clear()


async def run_rollout_engine(runtime: Runtime) -> None:
    """The worker `create_app` starts."""
    await RolloutEngine(runtime).run()
