"""The sync loop: heartbeat in, desired state out, outbox flushed, and it never gives up lightly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

from signalbeam import __version__
from signalbeam.agent.applier import Applier
from signalbeam.agent.backoff import Backoff
from signalbeam.agent.client import DeviceClient, Rejected, ServerUnavailable
from signalbeam.agent.clock import ClockWatch, steady
from signalbeam.agent.collectors import Collector
from signalbeam.agent.config import AgentSettings
from signalbeam.agent.identity import Identity
from signalbeam.agent.outbox import OUTBOX_FILE, Outbox, QueuedAhead
from signalbeam.agent.reconciler import NullReconciler, Reconciler
from signalbeam.agent.sampling import meanwhile
from signalbeam.agent.session_logs import LogSources
from signalbeam.agent.session_runner import SessionRunner
from signalbeam.agent.state import AgentStatus, StateStore, load_desired
from signalbeam.agent.telemetry import Flusher
from signalbeam.agent.watch import Watcher
from signalbeam.agent.wire import (
    DesiredState,
    Facts,
    Heartbeat,
    ReportedState,
    SyncRequest,
    SyncResponse,
)

log = logging.getLogger(__name__)
EXIT_REJECTED = 3
MIN_INTERVAL, MAX_INTERVAL = 1.0, 3600.0
MIN_RETRY_SECONDS = 0.25
STOP_GRACE_SECONDS = 10.0
FINAL_FLUSH_SECONDS = 5.0
SKEW_WARNING_SECONDS = 60.0
OUTAGE_AFTER_FAILURES = 2


def now() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


class Agent:
    """One running agent: the sync loop, the watch task, the outbox and the reconciler."""

    def __init__(
        self,
        settings: AgentSettings,
        identity: Identity,
        reconciler: Reconciler | None = None,
    ) -> None:
        self.settings = settings
        self.identity = identity
        self.server = settings.server or identity.server
        self.client = DeviceClient(
            self.server, identity.credential, request_seconds=settings.request_timeout
        )
        self.outbox = Outbox(settings.state_dir / OUTBOX_FILE, settings.outbox_max_samples)
        self.flusher = Flusher(self.client, self.outbox, settings.outbox_batch_size)
        self.store = StateStore(settings.state_dir)
        self.collector = Collector(settings.boot_id_file)
        self.reconciler: Reconciler = reconciler or NullReconciler()
        self.applier = Applier(self.reconciler, self._reported_changed)
        self.watcher = Watcher(
            self.client,
            self.known_generation,
            self._wake_now,
            settings.watch_timeout,
            take=self._take_watched,
            offer=self._offer_session,
        )
        drivers = getattr(self.reconciler, "drivers", None)
        self.sessions = SessionRunner(
            self.server, identity.credential, settings, self._log_sources, drivers
        )
        self.sessions.restart_agent = self.restart
        self.restart_requested = False
        self.interval = settings.interval
        self.backoff = Backoff()
        self.clock = ClockWatch()
        self.desired: DesiredState | None = load_desired(settings.state_dir)
        self.exit_code = 0
        self._facts_sent: Facts | None = None
        self._retry_at = 0.0
        self._online = False
        self._offline_since: float | None = None
        self._outage_recorded = False
        self._last_problem: str | None = None
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def status(self) -> AgentStatus:
        """The persisted status record (shortcut)."""
        return self.store.status

    @property
    def reported(self) -> ReportedState:
        """What this agent last said runs (shortcut)."""
        return self.applier.reported

    def known_generation(self) -> int:
        """The desired generation this agent holds (-1 for none yet)."""
        return self.desired.generation if self.desired is not None else -1

    def stop(self) -> None:
        """Ask the agent to stop after the current sync (SIGTERM and SIGINT call this)."""
        self._stop.set()
        self._wake.set()

    def restart(self) -> None:
        """Stop as `stop` does, then start again: `run` returns and `main` runs the agent anew."""
        self.restart_requested = True
        self.stop()

    def _offer_session(self, session_id: str) -> None:
        self.sessions.offer(session_id)

    def _log_sources(self) -> LogSources:
        drivers = getattr(self.reconciler, "drivers", None)
        containers = getattr(drivers, "containers", None)
        follow = getattr(containers, "follow_logs", None)
        apps = getattr(drivers, "apps", None)
        home = getattr(apps, "home", lambda name: self.settings.state_dir / "units" / name)
        return LogSources(
            units=lambda: {item.name: item.kind for item in self.reported.items},
            app_home=home,
            container_logs=(
                (lambda name, r: follow(name, r.tail, r.since_seconds, r.follow))
                if follow is not None
                else None
            ),
            state_dir=self.settings.state_dir,
            host_units=list(self.settings.log_host_units),
        )

    def _wake_now(self) -> None:
        self._wake.set()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def run(self) -> int:
        """Run until stopped (exit 0) or refused for good by the server (exit 3)."""
        self._install_signal_handlers()
        await self._start()
        syncing = self._spawn(self._sync_loop(), "signalbeam-agent sync")
        watching = self._spawn(self.watcher.run(), "signalbeam-agent watch")
        applying = self._spawn(self.applier.run(), "signalbeam-agent apply")
        syncing.add_done_callback(lambda _task: self.stop())
        await self._stop.wait()
        watching.cancel()
        applying.cancel()
        # Let a sync in flight finish so its sample is either stored or queued, not lost.
        _done, pending = await asyncio.wait({syncing}, timeout=STOP_GRACE_SECONDS)
        for task in pending:
            log.warning(
                "a sync was still running %g s after stop; abandoning it", STOP_GRACE_SECONDS
            )
            task.cancel()
        await asyncio.gather(syncing, watching, applying, return_exceptions=True)
        await self._shutdown()
        return self.exit_code

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)

    async def _start(self) -> None:
        status = self.status
        status.server, status.device_id = self.server, self.identity.device_id
        status.pid, status.running, status.started_at = os.getpid(), True, now()
        status.stopped_at = None
        status.sync_interval_seconds = self.interval
        log.info(
            "signalbeam-agent %s starting: device %s, server %s, state in %s",
            __version__,
            self.identity.device_id,
            self.server,
            self.settings.state_dir,
        )
        if self.desired is not None:
            log.info("resuming desired state generation %d kept on disk", self.desired.generation)
            self.status.desired_generation = self.desired.generation
            self.applier.want(self.desired)
        await self._event(
            "agent.started",
            f"agent {__version__} started (pid {os.getpid()})",
            {"version": __version__, "pid": os.getpid()},
        )
        self.store.save_status()

    async def _shutdown(self) -> None:
        status = self.status
        if self.exit_code != EXIT_REJECTED:
            await self._event("agent.stopped", "agent stopped", {"pid": os.getpid()})
            if self._online:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.flusher.flush(), FINAL_FLUSH_SECONDS)
        status.running, status.stopped_at = False, now()
        self.store.save_status()
        await self.sessions.close()
        await self.client.aclose()
        await self.reconciler.close()
        await asyncio.to_thread(self.outbox.close)
        log.info("signalbeam-agent stopped")

    async def _sync_loop(self) -> None:
        while not self._stop.is_set():
            try:
                await self._tick()
            except Exception:  # a bug in one tick must not end the agent; the next may work
                log.exception("unexpected error during sync; carrying on")
                self._retry_at = steady() + max(MIN_RETRY_SECONDS, self.backoff.next_delay())
            if not self._stop.is_set():
                await self._sleep(self._next_delay())

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    def _next_delay(self) -> float:
        waiting = self._retry_at - steady()
        return min(self.interval, waiting) if waiting > 0 else self.interval

    async def _tick(self) -> None:
        heartbeat = await self.collector.heartbeat()
        self.status.samples_taken += 1
        await self._check_clock()
        if steady() < self._retry_at:
            await self._queue(heartbeat)
        else:
            await self._sync(heartbeat)
        self.store.save_status()

    async def _sync(self, heartbeat: Heartbeat) -> None:
        facts = await self.collector.facts()
        await self.applier.refresh()
        ahead = await self._queue_ahead(heartbeat)
        request = SyncRequest(
            heartbeat=heartbeat,
            facts=None if facts == self._facts_sent else facts,
            reported=self.reported,
            known_generation=self.known_generation(),
            heartbeat_seq=ahead.seq if ahead else None,
            heartbeat_queued=ahead.backlog if ahead else False,
        )
        self.status.last_attempt_at = now()
        # Queued ahead, the sample is in the outbox whatever happens to this sync.
        unsent = None if ahead else heartbeat
        try:
            response = await meanwhile(self.client.sync(request), self.interval, self._sample)
        except ServerUnavailable as err:
            await self._failed(err.detail, err.retry_after, unsent, unreachable=err.unreachable)
            return
        except Rejected as err:
            if err.permanent:
                await self._give_up(err)
                return
            await self._failed(err.detail, None, unsent)
            return
        self._facts_sent = facts
        self.status.heartbeat_seq = response.hints.heartbeat_seq
        await self._sent_ahead(ahead)
        await self._succeeded(response)
        await self._apply(response)
        # Only now does the agent hold the generation this sync brought; the watch resumes.
        self.watcher.sync_done(online=True)
        await self._flush()

    async def _queue_ahead(self, heartbeat: Heartbeat) -> QueuedAhead | None:
        if not self.status.heartbeat_seq:
            return None  # a server that does not deduplicate by seq: send it the old way
        return await asyncio.to_thread(self.outbox.add_sample_ahead, heartbeat)

    async def _sent_ahead(self, ahead: QueuedAhead | None) -> None:
        """The sync was answered: the server stored the sample, or takes it from the outbox."""
        if ahead is None:
            self.status.samples_synced += 1
        elif ahead.backlog:
            self.status.samples_queued += 1
        else:
            await asyncio.to_thread(self.outbox.remove_sample, ahead.seq)
            self.status.samples_synced += 1

    async def _failed(
        self,
        detail: str,
        retry_after: float | None,
        heartbeat: Heartbeat | None,
        *,
        unreachable: bool = False,
    ) -> None:
        wait = self.backoff.probe_delay(self.interval) if unreachable else self.backoff.next_delay()
        delay = max(MIN_RETRY_SECONDS, wait, retry_after or 0.0)
        self._retry_at = steady() + delay
        self.status.last_error = detail
        if detail != self._last_problem:
            log.warning(
                "sync failed: %s; retrying in %.1f s, samples are queued meanwhile", detail, delay
            )
        self._last_problem = detail
        if heartbeat is not None:
            await self._queue(heartbeat)
        else:
            self.status.samples_queued += 1  # it was queued ahead of the sync
        self.watcher.sync_done(online=False)
        if self._online or self._offline_since is None:
            self._online, self._offline_since = False, steady()
        if self.backoff.attempt == OUTAGE_AFTER_FAILURES:
            # A single failed sync is a blip, logged but not worth an activity-log entry.
            self._outage_recorded = True
            await self._event(
                "agent.server_unreachable",
                f"cannot sync with {self.server}: {detail}",
                {"server": self.server, "error": detail},
            )

    async def _succeeded(self, response: SyncResponse) -> None:
        if self._last_problem is not None or not self._online:
            await self._back_online()
        self.backoff.reset()
        self._retry_at = 0.0
        status = self.status
        status.last_sync_at, status.last_error, status.stop_reason = now(), None, None
        self._use_interval(response.hints.sync_interval_seconds)
        self._check_skew(response.server_time)

    async def _back_online(self) -> None:
        if self._offline_since is None:
            log.info("synced with %s: device %s is online", self.server, self.identity.device_id)
        else:
            offline = steady() - self._offline_since
            counts = await asyncio.to_thread(self.outbox.counts)
            log.info(
                "server reachable again after %.0f s; delivering %d queued samples and %d events",
                offline,
                counts.samples,
                counts.events,
            )
            if self._outage_recorded:
                await self._event(
                    "agent.server_reachable",
                    f"reached {self.server} again after {offline:.0f} s offline",
                    {"offline_seconds": round(offline, 1), "queued_samples": counts.samples},
                )
        self._online, self._offline_since, self._last_problem = True, None, None
        self._outage_recorded = False

    def _use_interval(self, hint: float) -> None:
        # The server's hint wins over the local setting; it is bounded so a bad hint can
        # neither hammer the server nor silence the device.
        interval = min(MAX_INTERVAL, max(MIN_INTERVAL, hint))
        if interval != self.interval:
            log.info("syncing every %g s, as the server asks", interval)
        self.interval = interval
        self.status.sync_interval_seconds = interval

    def _check_skew(self, server_time: datetime) -> None:
        if server_time.tzinfo is None:
            server_time = server_time.replace(tzinfo=UTC)
        offset = (server_time - now()).total_seconds()
        previous = self.status.clock_offset_seconds
        self.status.clock_offset_seconds = round(offset, 3)
        if abs(offset) >= SKEW_WARNING_SECONDS and (
            previous is None or abs(previous) < SKEW_WARNING_SECONDS
        ):
            log.warning(
                "this device's clock is %.0f s %s the server's; queued samples carry local time",
                abs(offset),
                "behind" if offset > 0 else "ahead of",
            )

    async def _give_up(self, err: Rejected) -> None:
        log.error(
            "the server refused this device for good (%s); stopping. Register it again with "
            "`signalbeam-agent register` once the device is meant to be back",
            err.detail,
        )
        self.status.stop_reason = err.detail
        self.status.last_error = err.detail
        self.exit_code = EXIT_REJECTED
        self.stop()

    async def _apply(self, response: SyncResponse) -> None:
        if response.status != "changed":
            return
        desired = response.desired
        if desired is None:
            log.warning("the server said the desired state changed but sent none; ignoring it")
            return
        await self._take(desired)

    async def _take_watched(self, desired: DesiredState) -> None:
        """A desired state that came with a watch answer; a sync may have brought it already."""
        if desired.generation > self.known_generation():
            await self._take(desired)

    async def _take(self, desired: DesiredState) -> None:
        self.desired = desired
        self.store.save_desired(desired)
        if desired.generation > 0 or desired.spec:
            # Generation 0 with an empty spec is every new device's starting point: no news.
            log.info("desired state generation %d received", desired.generation)
            await self._event(
                "agent.desired_state_received",
                f"desired state generation {desired.generation} received",
                {"generation": desired.generation},
            )
        self.status.desired_generation = desired.generation
        self.applier.want(desired)

    async def _reported_changed(self, before: ReportedState, after: ReportedState) -> None:
        if after != self.status.reported:
            self.status.reported = after
            self.store.save_status()
        if (before.status, before.generation, before.reason) == (
            after.status,
            after.generation,
            after.reason,
        ):
            return
        # Report the outcome now rather than an interval later: rollouts wait for it.
        self._wake.set()
        event = outcome_event(before, after)
        if event is not None:
            await self._event(*event)

    async def _flush(self) -> None:
        try:
            result = await self.flusher.flush()
        except Rejected as err:
            await self._give_up(err)
            return
        if result.samples or result.events:
            log.debug("delivered %d queued samples, %d events", result.samples, result.events)

    async def _sample(self) -> None:
        """A sample taken while a sync hangs: straight to the outbox, in order behind it."""
        heartbeat = await self.collector.heartbeat()
        self.status.samples_taken += 1
        await self._queue(heartbeat)

    async def _queue(self, heartbeat: Heartbeat) -> None:
        if await asyncio.to_thread(self.outbox.add_sample, heartbeat):
            self.status.samples_queued += 1

    async def _event(self, type_: str, message: str, data: dict[str, Any]) -> None:
        await asyncio.to_thread(self.outbox.add_event, type_, message, data, now())

    async def _check_clock(self) -> None:
        jump = self.clock.check()
        if jump is None:
            return
        direction = "forward" if jump > 0 else "back"
        log.warning(
            "the system clock jumped %s by %.0f s; sample times around it are not comparable",
            direction,
            abs(jump),
        )
        await self._event(
            "agent.clock_jump",
            f"system clock jumped {direction} by {abs(jump):.0f} s",
            {"seconds": round(jump, 1)},
        )


def outcome_event(
    before: ReportedState, after: ReportedState
) -> tuple[str, str, dict[str, Any]] | None:
    """The activity-log entry for a change of reported status, if it deserves one."""
    running = f"{after.bundle}@{after.version}" if after.bundle else "nothing"
    data: dict[str, Any] = {
        "generation": after.generation,
        "bundle": after.bundle,
        "version": after.version,
    }
    if after.status == "failed":
        failed: dict[str, Any] = {"reason": after.reason}
        if after.failed_unit is not None:
            failed |= {"failed_unit": after.failed_unit, "failure_log": after.failure_log}
        return "agent.update_failed", f"update failed: {after.reason}", {**data, **failed}
    if after.status == "running" and before.status != "running":
        if before.status == "degraded":
            return "agent.recovered", f"{running} is healthy again", data
        return "agent.update_applied", f"{running} is running and healthy", data
    if after.status == "degraded":
        return (
            "agent.degraded",
            f"{running} is degraded: {after.reason}",
            {**data, "reason": after.reason},
        )
    return None
