"""The delivery worker: sends the notices owed to notifiers, retries the failed, groups storms.

Deliveries live in the database, queued in the same transaction as the incident change (or,
for webhooks, as the matcher's read position), so a restart loses none. Sends run here,
bounded in time and number, never in a request or in ingest. Each notifier is sent to by its
own task, several messages at once, and a round does not wait for them: a dead webhook or SMTP
server only delays its own deliveries. When many notices for one notifier and rule are due at
once (a site lost power), they go out as one message.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import insert, select, update

from signalbeam.domain.notifications import DeliveryState, Plan, Storms, retry_at
from signalbeam.server.db.models import Delivery, DeliveryAttempt, Notifier
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.notifications import (
    Outcome,
    base_url,
    notice_of,
    send,
    send_event,
)
from signalbeam.server.workers.leadership import Leadership
from signalbeam.server.workers.webhooks import WebhookMatcher

log = logging.getLogger(__name__)
LEASE = "deliveries"
# A storm's summary carries every notice held for it, so one round reads them all: held
# notices are not due until their summary, so a full batch is a storm, not a backlog.
BATCH = 5000
POLL_SECONDS = 1.0  # without a ring: deliveries another replica queued, retries coming due
# Rounds start at most this often however often the bell rings, so a flood of events costs
# a few small queries a second, not one round per event.
MIN_ROUND_GAP = 0.1
NOTIFIERS_AT_ONCE = 64  # notifiers being sent to at once
PER_NOTIFIER = 8  # messages in flight to one notifier at once
RECORD_EVERY = 100  # results written per transaction (a crash resends at most these)
# Connections for every message in flight, so a send never queues for one behind a dead
# receiver's (the pool's wait would count against the send's own timeout).
LIMITS = httpx.Limits(
    max_connections=NOTIFIERS_AT_ONCE * PER_NOTIFIER, max_keepalive_connections=PER_NOTIFIER * 4
)


class DeliveryWorker:
    """Sends what is due while this process holds the deliveries lease: at once when an event
    is committed here (the runtime's doorbell), else about once a second."""

    def __init__(self, runtime: Runtime, interval: float) -> None:
        self.runtime = runtime
        self.interval = interval
        self.leadership = Leadership(
            runtime, LEASE, "delivery worker", runtime.settings.rollout_lease
        )
        # Kept here: only the process holding the lease delivers (a takeover forgets a storm
        # in progress, which costs at most one more grouped message).
        self.storms = Storms()
        # Webhooks' deliveries are queued here from the event log, just before each round.
        self.matcher = WebhookMatcher(runtime)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        async with httpx.AsyncClient(follow_redirects=False, limits=LIMITS) as http:
            sender = Sender(self.runtime, http, self.storms)
            try:
                while True:
                    began = loop.time()
                    await self.run_once(sender)
                    await self.runtime.deliveries_due.wait(self.interval)
                    await asyncio.sleep(max(0.0, began + MIN_ROUND_GAP - loop.time()))
            finally:
                await sender.close()
                await self.leadership.release()

    async def run_once(self, sender: Sender) -> int:
        """Queue webhooks' new events and start sending every delivery due; how many started."""
        try:
            if not await self.leadership.hold(datetime.now(UTC)):
                self.matcher.forget()  # another process leads: start from the stored cursor
                return 0
            await self.matcher.run_once()
            # Read the clock after matching: what the matcher just queued is due now too.
            return await sender.start_due(datetime.now(UTC))
        except Exception:
            log.exception("delivering notifications failed; retrying in %.1fs", self.interval)
            return 0


class Sender:
    """Sends due deliveries, one task per notifier, without waiting for slow receivers.

    A notifier whose task still runs is left out of later rounds, so nothing in flight is
    picked up (and sent) again, and its new deliveries wait for its current ones.
    """

    def __init__(self, runtime: Runtime, http: httpx.AsyncClient, storms: Storms) -> None:
        self.runtime = runtime
        self.http = http
        self.storms = storms
        self.busy: dict[int, asyncio.Task[None]] = {}  # notifier id -> its sending task

    async def start_due(self, now: datetime) -> int:
        """Start sending what is due to each notifier not busy; how many deliveries started."""
        room = NOTIFIERS_AT_ONCE - len(self.busy)
        if room <= 0:
            return 0
        due, notifiers = await _due(self.runtime, now, set(self.busy))
        if len(due) == BATCH:
            # One notifier's backlog may have filled the batch; it is busy in the next round.
            self.runtime.deliveries_due.ring()
        started = 0
        for notifier_id, owed in list(_by_notifier(due).items())[:room]:
            if notifier_id in notifiers:
                self._start(notifiers[notifier_id], owed, now)
                started += len(owed)
        return started

    def _start(self, notifier: Notifier, owed: list[Delivery], now: datetime) -> None:
        work = _deliver(self.runtime, self.http, notifier, owed, self.storms, now)
        task = asyncio.create_task(work, name=f"deliver to notifier {notifier.id}")
        self.busy[notifier.id] = task
        task.add_done_callback(functools.partial(self._done, notifier.id))

    def _done(self, notifier_id: int, task: asyncio.Task[None]) -> None:
        self.busy.pop(notifier_id, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("sending to notifier %d failed", notifier_id, exc_info=task.exception())
        self.runtime.deliveries_due.ring()  # its next deliveries may be waiting

    async def drain(self) -> None:
        """Until every send started here is done and recorded."""
        while self.busy:
            await asyncio.gather(*self.busy.values(), return_exceptions=True)

    async def close(self) -> None:
        """Stop sending (shutdown): what was not recorded stays pending and is sent again."""
        for task in self.busy.values():
            task.cancel()
        await self.drain()


async def deliver_due(
    runtime: Runtime, http: httpx.AsyncClient, storms: Storms, now: datetime
) -> int:
    """Attempt every due delivery and record each result; how many were due."""
    sender = Sender(runtime, http, storms)
    started = await sender.start_due(now)
    await sender.drain()
    return started


async def _due(
    runtime: Runtime, now: datetime, busy: set[int]
) -> tuple[list[Delivery], dict[int, Notifier]]:
    """Pending deliveries due by `now`, oldest first, but for busy notifiers; their notifiers."""
    async with runtime.sessions() as session:
        query = select(Delivery).where(
            Delivery.state == DeliveryState.PENDING.value, Delivery.next_attempt_at <= now
        )
        if busy:
            query = query.where(Delivery.notifier_id.not_in(busy))
        due = list(await session.scalars(query.order_by(Delivery.id).limit(BATCH)))
        ids = {d.notifier_id for d in due}
        found = await session.scalars(select(Notifier).where(Notifier.id.in_(ids)))
        return due, {n.id: n for n in found}


def _by_notifier(due: list[Delivery]) -> dict[int, list[Delivery]]:
    batches: dict[int, list[Delivery]] = defaultdict(list)
    for delivery in due:
        batches[delivery.notifier_id].append(delivery)
    return batches


@dataclass
class Messages:
    """One notifier's due deliveries as messages to send, and those held for a summary."""

    send: list[list[Delivery]] = field(default_factory=list)
    held: list[tuple[Delivery, datetime]] = field(default_factory=list)  # (delivery, until)


def messages(notifier_id: int, owed: list[Delivery], storms: Storms, now: datetime) -> Messages:
    """Split one notifier's due deliveries into messages: one each, or grouped in a storm.

    Held deliveries wait until their storm's summary is due: left due, they would fill every
    round's batch and delay other notices, and a summary would carry only one batch of them.
    """
    by_kind: dict[tuple[str, str], list[Delivery]] = defaultdict(list)
    for delivery in owed:
        notice = delivery.notice
        by_kind[(str(notice["rule"]), str(notice["transition"]))].append(delivery)
    out = Messages()
    for (rule, transition), group in by_kind.items():
        key = (notifier_id, rule, transition)
        plan = storms.plan(key, len(group), now)
        if plan is Plan.HOLD:
            until = storms.summary_at(key) or now
            out.held += [(delivery, until) for delivery in group]
            continue
        storms.sent(key, len(group), plan, now)
        out.send += [group] if plan is Plan.GROUP else [[delivery] for delivery in group]
    return out


async def _deliver(
    runtime: Runtime,
    http: httpx.AsyncClient,
    notifier: Notifier,
    owed: list[Delivery],
    storms: Storms,
    now: datetime,
) -> None:
    """Send one notifier what it is owed, several messages at once, recording as they finish."""
    if notifier.events is not None:  # a webhook: one event a message, never grouped
        planned = Messages(send=[[delivery] for delivery in owed])
    else:
        planned = messages(notifier.id, owed, storms, now)
    if planned.held:
        await _hold(runtime, planned.held)
    sending = Sending(runtime, http, notifier, base_url(runtime))
    for chunk in _chunks(planned.send, RECORD_EVERY):
        await _record(runtime, await sending.send_all(chunk))


@dataclass
class Sent:
    """One message's outcome and when it came."""

    message: list[Delivery]
    outcome: Outcome
    at: datetime


@dataclass
class Sending:
    """Messages to one notifier, at most PER_NOTIFIER at once."""

    runtime: Runtime
    http: httpx.AsyncClient
    notifier: Notifier
    url: str
    # Its receiver did not answer: the rest wait for the next try too, rather than each
    # waiting out its own timeout.
    unreachable: Outcome | None = None
    gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(PER_NOTIFIER))

    async def send_all(self, chunk: Sequence[list[Delivery]]) -> list[Sent]:
        return list(await asyncio.gather(*(self._one(message) for message in chunk)))

    async def _one(self, message: list[Delivery]) -> Sent:
        async with self.gate:
            if self.unreachable is not None:
                return Sent(message, self.unreachable, datetime.now(UTC))
            outcome = await _send(self.http, self.notifier, message, self.url)
        notifier = self.notifier
        self.runtime.metrics.meters.delivery(notifier.tenant_id, notifier.kind, outcome.delivered)
        if not outcome.delivered:
            log.warning(
                "notification to %s failed (%s); retrying later", notifier.name, outcome.describe()
            )
            if outcome.status_code is None:
                self.unreachable = outcome
        return Sent(message, outcome, datetime.now(UTC))


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def _send(
    http: httpx.AsyncClient, notifier: Notifier, message: list[Delivery], url: str
) -> Outcome:
    if notifier.events is not None:
        return await send_event(http, notifier, message[0])
    return await send(http, notifier, [notice_of(d, url) for d in message], message[0].id)


async def _hold(runtime: Runtime, held: list[tuple[Delivery, datetime]]) -> None:
    """Make held notices due with their storm's next summary."""
    async with runtime.sessions() as session, session.begin():
        for until, ids in _by_time(held).items():
            await session.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids), Delivery.state == DeliveryState.PENDING.value)
                .values(next_attempt_at=until)
            )


async def _record(runtime: Runtime, results: list[Sent]) -> None:
    """Settle each sent delivery and log its attempt: one read, one update, one insert."""
    ids = [delivery.id for sent in results for delivery in sent.message]
    if not ids:
        return
    async with runtime.sessions() as session, session.begin():
        rows = await session.scalars(select(Delivery).where(Delivery.id.in_(ids)))
        stored = {row.id: row for row in rows}  # one missing: its notifier was deleted
        attempts = []
        for sent in results:
            for delivery in (stored[d.id] for d in sent.message if d.id in stored):
                _settle(delivery, sent.outcome, sent.at)
                attempts.append(_attempt(delivery.id, sent))
        if attempts:
            await session.execute(insert(DeliveryAttempt), attempts)


def _attempt(delivery_id: int, sent: Sent) -> dict[str, Any]:
    return {
        "delivery_id": delivery_id,
        "at": sent.at,
        "status_code": sent.outcome.status_code,
        "error": sent.outcome.error,
        "grouped": len(sent.message),
    }


def _by_time(held: list[tuple[Delivery, datetime]]) -> dict[datetime, list[int]]:
    out: dict[datetime, list[int]] = defaultdict(list)
    for delivery, until in held:
        out[until].append(delivery.id)
    return out


def _settle(delivery: Delivery, outcome: Outcome, now: datetime) -> None:
    delivery.attempts += 1
    delivery.last_result = outcome.describe()
    if outcome.delivered:
        delivery.state = DeliveryState.DELIVERED.value
        delivery.delivered_at = now
        return
    later = retry_at(delivery.attempts, now)
    if later is None:
        delivery.state = DeliveryState.DEAD.value
    else:
        delivery.next_attempt_at = later


async def run_deliveries(runtime: Runtime) -> None:
    """The worker `create_app` starts."""
    await DeliveryWorker(runtime, POLL_SECONDS).run()
