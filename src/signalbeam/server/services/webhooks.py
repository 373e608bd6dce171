"""Webhooks: a tenant's recorded events POSTed as signed JSON to a URL, filtered by event type
and device selector, through the same durable, retried deliveries as alert notifications."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from signalbeam.domain.errors import Conflict, NotFound
from signalbeam.domain.model import EventType, Role
from signalbeam.domain.notifications import DeliveryState, NotifierKind
from signalbeam.domain.selectors import parse_selector
from signalbeam.domain.webhooks import (
    TEST_EVENT,
    EventSeen,
    body,
    check_event_types,
    check_webhook_name,
    check_webhook_url,
    joined,
)
from signalbeam.server.db.models import Delivery, DeliveryAttempt
from signalbeam.server.repositories.webhooks import Webhook
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.context import Actor, UnitOfWork
from signalbeam.server.services.notifications import Outcome, send_event
from signalbeam.server.services.notifiers import DELIVERY_LOG, LoggedDelivery


@dataclass(frozen=True)
class WebhookDraft:
    """A webhook as a request carries it, before it is checked."""

    name: str
    url: str
    events: tuple[str, ...]
    selector: str | None = None
    enabled: bool = True
    secret: str | None = None  # the signing key; made when not given


@dataclass(frozen=True)
class WebhookChange:
    """What an update changes; None leaves a field as it is, a blank selector clears it."""

    url: str | None = None
    events: tuple[str, ...] | None = None
    selector: str | None = None
    enabled: bool | None = None
    secret: str | None = None


@dataclass(frozen=True)
class Created:
    """A new webhook, and its signing key when the server made one (shown this once)."""

    webhook: Webhook
    secret: str | None


def _selector(text: str | None) -> str | None:
    """The selector in its normal form; None (every device) when blank."""
    if text is None or not text.strip():
        return None
    return str(parse_selector(text)) or None


async def create(runtime: Runtime, actor: Actor, draft: WebhookDraft) -> Created:
    """A new webhook (admins: it sends the tenant's activity out)."""
    actor.require(Role.ADMIN)
    name = check_webhook_name(draft.name)
    url = check_webhook_url(draft.url)
    events = check_event_types(draft.events)
    selector = _selector(draft.selector)
    made = None if draft.secret else secrets.token_urlsafe(32)
    async with runtime.unit_of_work(actor) as uow:
        await _free(uow, name)
        webhook = await uow.webhooks.add(
            Webhook(
                name=name,
                kind=NotifierKind.WEBHOOK.value,
                min_severity="info",  # unused: a webhook is sent events, not incidents
                selector=selector,
                config={"url": url},
                secret=draft.secret or made,
                enabled=draft.enabled,
                events=joined(events),
                created_at=datetime.now(UTC),
                created_by=str(actor),
            )
        )
        _record(uow, webhook, "created")
        await uow.commit()
    return Created(webhook, made)


async def _free(uow: UnitOfWork, name: str) -> None:
    holder = await uow.notifiers.holder(name)
    if holder is not None:
        what = "webhook" if holder.events is not None else "alert notifier"
        raise Conflict(
            f'a {what} named "{name}" already exists (webhooks and notifiers share names); '
            "pick another name",
            field="name",
        )


def _record(uow: UnitOfWork, webhook: Webhook, change: str) -> None:
    # Neither the URL (it may carry a token) nor the secret goes into the activity log.
    uow.record(
        EventType.WEBHOOK_CHANGED,
        f"webhook {webhook.name} {change}",
        data={"webhook": webhook.name, "change": change, "events": webhook.events},
    )


async def list_webhooks(runtime: Runtime, actor: Actor) -> list[Webhook]:
    async with runtime.unit_of_work(actor) as uow:
        return await uow.webhooks.all()


async def show(runtime: Runtime, actor: Actor, name: str) -> Webhook:
    async with runtime.unit_of_work(actor) as uow:
        return await _get(uow, name)


async def update(runtime: Runtime, actor: Actor, name: str, change: WebhookChange) -> Webhook:
    """Change a webhook's URL, events, selector, enabled flag or signing key (admins)."""
    actor.require(Role.ADMIN)
    async with runtime.unit_of_work(actor) as uow:
        webhook = await _get(uow, name)
        if change.url is not None:
            webhook.config = {"url": check_webhook_url(change.url)}
        if change.events is not None:
            webhook.events = joined(check_event_types(change.events))
        if change.selector is not None:
            webhook.selector = _selector(change.selector)
        if change.enabled is not None:
            webhook.enabled = change.enabled
        if change.secret is not None:
            webhook.secret = change.secret
        _record(uow, webhook, "updated")
        await uow.commit()
    return webhook


async def delete(runtime: Runtime, actor: Actor, name: str) -> None:
    """Remove a webhook and its delivery log (admins)."""
    actor.require(Role.ADMIN)
    async with runtime.unit_of_work(actor) as uow:
        webhook = await _get(uow, name)
        await uow.webhooks.delete(webhook)
        _record(uow, webhook, "deleted")
        await uow.commit()


async def deliveries(runtime: Runtime, actor: Actor, name: str) -> list[LoggedDelivery]:
    """The webhook's latest deliveries, newest first, each with its attempts."""
    async with runtime.unit_of_work(actor) as uow:
        webhook = await _get(uow, name)
        logged = await uow.notifiers.log(webhook, DELIVERY_LOG)
    return [LoggedDelivery(delivery, attempts) for delivery, attempts in logged]


async def redeliver(runtime: Runtime, actor: Actor, name: str, delivery_id: int) -> Delivery:
    """Send one of the webhook's deliveries again, with fresh retries."""
    actor.require(Role.OPERATOR)
    async with runtime.unit_of_work(actor) as uow:
        webhook = await _get(uow, name)
        delivery = await uow.notifiers.delivery(delivery_id)
        if delivery is None or delivery.notifier_id != webhook.id:
            raise NotFound(f"webhook {name} has no delivery {delivery_id}", field="delivery")
        delivery.state = DeliveryState.PENDING.value
        delivery.attempts = 0
        delivery.next_attempt_at = datetime.now(UTC)
        await uow.commit()
    # No event is recorded, so nothing else rings: without this it waits for the next poll.
    runtime.deliveries_due.ring()
    return delivery


async def test(runtime: Runtime, actor: Actor, name: str) -> Outcome:
    """Send a `webhook.test` event now and say what the receiver answered (it is logged too)."""
    actor.require(Role.OPERATOR)
    now = datetime.now(UTC)
    async with runtime.unit_of_work(actor) as uow:
        webhook = await _get(uow, name)
        event = EventSeen(
            id=0,
            type=TEST_EVENT,
            actor=str(actor),
            message=f"test event from SignalBeam to webhook {name}, sent by {actor.name}",
            data={},
            created_at=now.isoformat(),
        )
        delivery = await uow.notifiers.queue(
            Delivery(
                notifier_id=webhook.id,
                incident_id=None,
                transition=TEST_EVENT,
                notice=body(name, event),
                state=DeliveryState.PENDING.value,
                attempts=1,
                next_attempt_at=now,
                created_at=now,
            )
        )
        async with httpx.AsyncClient(follow_redirects=False) as http:
            outcome = await send_event(http, webhook, delivery)
        _settle_test(uow, delivery, outcome, now)
        await uow.commit()
    return outcome


def _settle_test(uow: UnitOfWork, delivery: Delivery, outcome: Outcome, now: datetime) -> None:
    delivery.state = (DeliveryState.DELIVERED if outcome.delivered else DeliveryState.DEAD).value
    delivery.delivered_at = now if outcome.delivered else None
    delivery.last_result = outcome.describe()
    uow.session.add(
        DeliveryAttempt(
            delivery_id=delivery.id,
            at=now,
            status_code=outcome.status_code,
            error=outcome.error,
            grouped=1,
        )
    )


async def _get(uow: UnitOfWork, name: str) -> Webhook:
    webhook = await uow.webhooks.get(name)
    if webhook is None:
        names = ", ".join(w.name for w in await uow.webhooks.all()) or "none"
        raise NotFound(f'no webhook "{name}"; webhooks: {names}', field="webhook")
    return webhook
