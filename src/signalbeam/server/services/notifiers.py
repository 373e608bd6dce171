"""Notifiers: where notifications go (webhook, Slack, Teams, email), routed by severity and
labels, tested from the CLI or dashboard, with a log of every delivery and a redeliver."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from signalbeam.domain.alerts import Severity
from signalbeam.domain.errors import Conflict, InvalidInput, NotFound
from signalbeam.domain.model import EventType, Role
from signalbeam.domain.notifications import (
    DeliveryState,
    Notice,
    NotifierKind,
    check_notifier_name,
    check_url,
)
from signalbeam.domain.selectors import parse_selector
from signalbeam.server.db.models import Delivery, DeliveryAttempt, Notifier
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.context import Actor, UnitOfWork
from signalbeam.server.services.notifications import Outcome, base_url, send

DELIVERY_LOG = 50


@dataclass(frozen=True)
class NotifierDraft:
    """A notifier as a request carries it, before it is checked."""

    name: str
    kind: str
    url: str | None = None
    secret: str | None = None  # webhook signing key (made when not given) or SMTP password
    min_severity: str = Severity.WARNING.value
    selector: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 587
    starttls: bool = True
    username: str | None = None
    sender: str | None = None
    to: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Created:
    """A new notifier, and its signing key when the server made one (shown this once)."""

    notifier: Notifier
    signing_key: str | None


def _config(kind: NotifierKind, draft: NotifierDraft) -> dict[str, Any]:
    if kind is not NotifierKind.EMAIL:
        if draft.url is None:
            raise InvalidInput(f"a {kind.value} notifier needs a url", field="url")
        return {"url": check_url(draft.url)}
    for name in ("smtp_host", "sender"):
        if not getattr(draft, name):
            raise InvalidInput(f"an email notifier needs {name}", field=name)
    if not draft.to or not all("@" in address for address in draft.to):
        raise InvalidInput("an email notifier needs `to`: one or more addresses", field="to")
    return {
        "smtp_host": draft.smtp_host,
        "smtp_port": draft.smtp_port,
        "starttls": draft.starttls,
        "username": draft.username,
        "sender": draft.sender,
        "to": list(draft.to),
    }


def _kind(value: str) -> NotifierKind:
    try:
        return NotifierKind(value)
    except ValueError:
        known = ", ".join(k.value for k in NotifierKind)
        raise InvalidInput(
            f"unknown kind {value[:40]!r}; use one of: {known}", field="kind"
        ) from None


async def create(runtime: Runtime, actor: Actor, draft: NotifierDraft) -> Created:
    """A new notifier (admins: it decides where the tenant's alerts go)."""
    actor.require(Role.ADMIN)
    name = check_notifier_name(draft.name)
    kind = _kind(draft.kind)
    config = _config(kind, draft)
    if draft.min_severity not in {s.value for s in Severity}:
        known = ", ".join(s.value for s in Severity)
        raise InvalidInput(f"min_severity must be one of: {known}", field="min_severity")
    selector = str(parse_selector(draft.selector)) if draft.selector else None
    made = None
    secret = draft.secret
    if kind is NotifierKind.WEBHOOK and not secret:
        secret = made = secrets.token_urlsafe(32)
    async with runtime.unit_of_work(actor) as uow:
        holder = await uow.notifiers.holder(name)
        if holder is not None:
            what = "notifier" if holder.events is None else "webhook (they share names)"
            raise Conflict(f'{what} "{name}" already exists', field="name")
        notifier = await uow.notifiers.add(
            Notifier(
                name=name,
                kind=kind.value,
                min_severity=draft.min_severity,
                selector=selector or None,
                config=config,
                secret=secret,
                enabled=True,
                created_at=datetime.now(UTC),
                created_by=str(actor),
            )
        )
        uow.record(
            EventType.ALERT_RULE_CHANGED,
            f"notifier {name} ({kind.value}) added",
            data={"notifier": name, "change": "created"},
        )
        await uow.commit()
    return Created(notifier, made)


async def list_notifiers(runtime: Runtime, actor: Actor) -> list[Notifier]:
    async with runtime.unit_of_work(actor) as uow:
        return await uow.notifiers.all()


async def delete(runtime: Runtime, actor: Actor, name: str) -> None:
    actor.require(Role.ADMIN)
    async with runtime.unit_of_work(actor) as uow:
        notifier = await _get(uow, name)
        await uow.notifiers.delete(notifier)
        uow.record(
            EventType.ALERT_RULE_CHANGED,
            f"notifier {name} removed",
            data={"notifier": name, "change": "deleted"},
        )
        await uow.commit()


async def test(runtime: Runtime, actor: Actor, name: str) -> Outcome:
    """Send a test notice now and say what the receiver answered (it is logged too)."""
    actor.require(Role.OPERATOR)
    now = datetime.now(UTC)
    async with runtime.unit_of_work(actor) as uow:
        notifier = await _get(uow, name)
        notice = {
            "incident_id": 0,
            "transition": "test",
            "rule": "test",
            "severity": Severity.INFO.value,
            "subject": "signalbeam",
            "title": f"test notification from SignalBeam to {name}, sent by {actor.name}",
            "at": now.isoformat(),
        }
        delivery = await uow.notifiers.queue(
            Delivery(
                notifier_id=notifier.id,
                incident_id=None,
                transition=f"test:{now.isoformat()}",
                notice=notice,
                state=DeliveryState.PENDING.value,
                attempts=1,
                next_attempt_at=now,
                created_at=now,
            )
        )
        message = Notice(
            incident_id=0,
            transition="test",
            rule="test",
            severity=Severity.INFO.value,
            subject="signalbeam",
            title=str(notice["title"]),
            at=now,
            url=base_url(runtime),
        )
        async with httpx.AsyncClient() as http:
            outcome = await send(http, notifier, [message], delivery.id)
        delivery.state = (
            DeliveryState.DELIVERED if outcome.delivered else DeliveryState.DEAD
        ).value
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
        await uow.commit()
    return outcome


@dataclass(frozen=True)
class LoggedDelivery:
    delivery: Delivery
    attempts: list[DeliveryAttempt]


async def deliveries(runtime: Runtime, actor: Actor, name: str) -> list[LoggedDelivery]:
    """The notifier's latest deliveries, newest first, each with its attempts."""
    async with runtime.unit_of_work(actor) as uow:
        notifier = await _get(uow, name)
        logged = await uow.notifiers.log(notifier, DELIVERY_LOG)
    return [LoggedDelivery(delivery, attempts) for delivery, attempts in logged]


async def redeliver(runtime: Runtime, actor: Actor, delivery_id: int) -> Delivery:
    """Send a delivery again (a dead one, or one the receiver lost) with fresh retries."""
    actor.require(Role.OPERATOR)
    async with runtime.unit_of_work(actor) as uow:
        delivery = await uow.notifiers.delivery(delivery_id)
        if delivery is None:
            raise NotFound(f"no delivery {delivery_id}", field="delivery")
        delivery.state = DeliveryState.PENDING.value
        delivery.attempts = 0
        delivery.next_attempt_at = datetime.now(UTC)
        await uow.commit()
    # No event is recorded, so nothing else rings: without this it waits for the next poll.
    runtime.deliveries_due.ring()
    return delivery


async def _get(uow: UnitOfWork, name: str) -> Notifier:
    notifier = await uow.notifiers.get(name)
    if notifier is None:
        names = ", ".join(n.name for n in await uow.notifiers.all()) or "none"
        raise NotFound(f'no notifier "{name}"; notifiers: {names}', field="notifier")
    return notifier
