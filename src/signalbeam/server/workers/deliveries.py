"""The delivery worker: sends the notices owed to notifiers, retries the failed, groups storms.

Deliveries live in the database, queued in the same transaction as the incident change, so a
restart loses none. Sends run here, bounded in time and number, never in a request or in
ingest: a dead webhook or SMTP server only delays its own deliveries. When many notices for
one notifier and rule are due at once (a site lost power), they go out as one message.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from sqlalchemy import select, update

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
PARALLEL = 8  # notifiers sent to at once


class DeliveryWorker:
    """Sends what is due about once a second while this process holds the deliveries lease."""

    def __init__(self, runtime: Runtime, interval: float = 1.0) -> None:
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
        async with httpx.AsyncClient(follow_redirects=False) as http:
            try:
                while True:
                    await self.run_once(http)
                    await asyncio.sleep(self.interval)
            finally:
                await self.leadership.release()

    async def run_once(self, http: httpx.AsyncClient) -> int:
        """Send every delivery due now; how many were attempted."""
        now = datetime.now(UTC)
        try:
            if not await self.leadership.hold(now):
                self.matcher.forget()  # another process leads: start from the stored cursor
                return 0
            await self.matcher.run_once()
            return await deliver_due(self.runtime, http, self.storms, now)
        except Exception:
            log.exception("delivering notifications failed; retrying in %.1fs", self.interval)
            return 0


async def deliver_due(
    runtime: Runtime, http: httpx.AsyncClient, storms: Storms, now: datetime
) -> int:
    """Attempt every due delivery: one message each, or grouped when a storm is on."""
    async with runtime.sessions() as session:
        query = (
            select(Delivery)
            .where(Delivery.state == DeliveryState.PENDING.value, Delivery.next_attempt_at <= now)
            .order_by(Delivery.id)
            .limit(BATCH)
        )
        due = list(await session.scalars(query))
        ids = {d.notifier_id for d in due}
        notifiers = {
            n.id: n for n in await session.scalars(select(Notifier).where(Notifier.id.in_(ids)))
        }
    batches: dict[int, list[Delivery]] = defaultdict(list)
    for delivery in due:
        batches[delivery.notifier_id].append(delivery)
    gate = asyncio.Semaphore(PARALLEL)

    async def one(notifier_id: int, owed: list[Delivery]) -> None:
        async with gate:
            await _deliver(runtime, http, notifiers[notifier_id], owed, storms, now)

    await asyncio.gather(*(one(n, owed) for n, owed in batches.items() if n in notifiers))
    return len(due)


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
    url = base_url(runtime)
    results = []
    unreachable: Outcome | None = None
    if notifier.events is not None:  # a webhook: one event a message, never grouped
        planned = Messages(send=[[delivery] for delivery in owed])
    else:
        planned = messages(notifier.id, owed, storms, now)
    for message in planned.send:
        if unreachable is not None:
            # Its receiver did not answer this round: the rest wait for the next try too,
            # rather than each waiting out its own timeout.
            results.append((message, unreachable))
            continue
        outcome = await _send(http, notifier, message, url)
        runtime.metrics.meters.delivery(notifier.tenant_id, notifier.kind, outcome.delivered)
        results.append((message, outcome))
        if not outcome.delivered:
            log.warning(
                "notification to %s failed (%s); retrying later", notifier.name, outcome.describe()
            )
            if outcome.status_code is None:
                unreachable = outcome
    await _record(runtime, results, planned.held, now)


async def _send(
    http: httpx.AsyncClient, notifier: Notifier, message: list[Delivery], url: str
) -> Outcome:
    if notifier.events is not None:
        return await send_event(http, notifier, message[0])
    return await send(http, notifier, [notice_of(d, url) for d in message], message[0].id)


async def _record(
    runtime: Runtime,
    results: list[tuple[list[Delivery], Outcome]],
    held: list[tuple[Delivery, datetime]],
    now: datetime,
) -> None:
    async with runtime.sessions() as session, session.begin():
        for until, ids in _by_time(held).items():
            await session.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids), Delivery.state == DeliveryState.PENDING.value)
                .values(next_attempt_at=until)
            )
        for message, outcome in results:
            for sent in message:
                delivery = await session.get(Delivery, sent.id)
                if delivery is None:
                    continue  # its notifier was deleted meanwhile
                _settle(delivery, outcome, now)
                session.add(
                    DeliveryAttempt(
                        delivery_id=delivery.id,
                        at=now,
                        status_code=outcome.status_code,
                        error=outcome.error,
                        grouped=len(message),
                    )
                )


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
    await DeliveryWorker(runtime).run()
