"""Notices owed to notifiers: queued with the incident change that caused them, sent by the
delivery worker (webhook, Slack, Teams or email), each attempt recorded."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import httpx
import orjson

from signalbeam.domain.notifications import (
    SIGNATURE_HEADER,
    DeliveryState,
    Notice,
    NotifierKind,
    chat_body,
    headline,
    sign,
    text,
    wants,
    webhook_body,
)
from signalbeam.domain.selectors import parse_selector
from signalbeam.domain.silences import Silence
from signalbeam.server.db.models import Delivery, Device, Incident, Notifier
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.context import UnitOfWork
from signalbeam.server.services.silences import active as active_silences

SEND_SECONDS = 10.0


async def queue_notices(
    uow: UnitOfWork, incident: Incident, rule: str, transition: str, device: Device | None
) -> int:
    """Owe every notifier this incident's transition reaches a notice; how many were queued."""
    key = f"{transition}:{incident.fired_count}"
    now = datetime.now(UTC)
    queued = 0
    notifiers = await uow.notifiers.enabled()
    if not notifiers:
        return 0
    muted = _muted(await active_silences(uow, now), rule, device, now)
    for notifier in notifiers:
        if not _routes(notifier, incident, device):
            continue
        if await uow.notifiers.owed(notifier.id, incident.id, key):
            continue
        notice = _notice(incident, rule, transition, now)
        owed = _owed(notifier, incident.id, key, notice, now)
        if muted:  # logged, never sent: the incident itself is not hidden
            owed.state = DeliveryState.SILENCED.value
            owed.last_result = "silenced"
        await uow.notifiers.queue(owed)
        queued += 1
    return queued


def _muted(silences: list[Silence], rule: str, device: Device | None, now: datetime) -> bool:
    labels = device.labels if device is not None else None
    zone = (device.facts or {}).get("timezone") if device is not None else None
    timezone = zone if isinstance(zone, str) else None
    return any(s.mutes(now, rule, labels, timezone) for s in silences)


def _routes(notifier: Notifier, incident: Incident, device: Device | None) -> bool:
    if not wants(notifier.min_severity, incident.severity):
        return False
    if notifier.selector:
        return device is not None and parse_selector(notifier.selector).matches(device.labels)
    return True


def _notice(incident: Incident, rule: str, transition: str, now: datetime) -> dict[str, Any]:
    return {
        "incident_id": incident.id,
        "transition": transition,
        "rule": rule,
        "severity": incident.severity,
        "subject": incident.subject,
        "title": incident.title,
        "at": now.isoformat(),
    }


def _owed(
    notifier: Notifier, incident_id: int | None, key: str, notice: dict[str, Any], now: datetime
) -> Delivery:
    return Delivery(
        notifier_id=notifier.id,
        incident_id=incident_id,
        transition=key,
        notice=notice,
        state=DeliveryState.PENDING.value,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )


def base_url(runtime: Runtime) -> str:
    """Where the dashboard is, for links in notices."""
    settings = runtime.settings
    return (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")


def notice_of(delivery: Delivery, base: str) -> Notice:
    """The stored notice, with the dashboard link of its incident."""
    data = delivery.notice
    return Notice(
        incident_id=int(data["incident_id"]),
        transition=str(data["transition"]),
        rule=str(data["rule"]),
        severity=str(data["severity"]),
        subject=str(data["subject"]),
        title=str(data["title"]),
        at=datetime.fromisoformat(str(data["at"])),
        url=f"{base}/alerts/{data['incident_id']}",
    )


@dataclass(frozen=True)
class Outcome:
    """What one send came to: delivered or not, the receiver's status code or the error."""

    delivered: bool
    status_code: int | None = None
    error: str | None = None

    def describe(self) -> str:
        if self.status_code is not None:
            return f"HTTP {self.status_code}" + (f": {self.error}" if self.error else "")
        return self.error or "delivered"


async def send(
    http: httpx.AsyncClient, notifier: Notifier, notices: list[Notice], delivery_id: int
) -> Outcome:
    """One message to one notifier, carrying one notice or a group of them."""
    kind = NotifierKind(notifier.kind)
    try:
        if kind is NotifierKind.EMAIL:
            return await _email(notifier, notices)
        return await _post(http, notifier, kind, notices, delivery_id)
    except (httpx.HTTPError, aiosmtplib.SMTPException, OSError, TimeoutError) as err:
        return Outcome(False, error=f"{type(err).__name__}: {err}"[:300])


async def send_event(http: httpx.AsyncClient, webhook: Notifier, delivery: Delivery) -> Outcome:
    """One event to one webhook: the body stored when it was queued, signed like a notice."""
    try:
        extra = {"X-SignalBeam-Event": delivery.transition}
        return await _post_json(http, webhook, delivery.notice, delivery.id, extra)
    except (httpx.HTTPError, OSError, TimeoutError) as err:
        return Outcome(False, error=f"{type(err).__name__}: {err}"[:300])


async def _post(
    http: httpx.AsyncClient,
    notifier: Notifier,
    kind: NotifierKind,
    notices: list[Notice],
    delivery_id: int,
) -> Outcome:
    payload = webhook_body(notices) if kind is NotifierKind.WEBHOOK else chat_body(kind, notices)
    return await _post_json(http, notifier, payload, delivery_id)


async def _post_json(
    http: httpx.AsyncClient,
    notifier: Notifier,
    payload: dict[str, Any],
    delivery_id: int,
    extra: dict[str, str] | None = None,
) -> Outcome:
    body = orjson.dumps(payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "SignalBeam",
        # The same id on a retry: a receiver that saw it already can ignore it.
        "X-SignalBeam-Delivery": str(delivery_id),
        **(extra or {}),
    }
    if notifier.kind == NotifierKind.WEBHOOK.value and notifier.secret:
        headers[SIGNATURE_HEADER] = sign(notifier.secret, int(time.time()), body)
    url = str(notifier.config["url"])
    response = await http.post(url, content=body, headers=headers, timeout=SEND_SECONDS)
    if response.is_success:
        return Outcome(True, response.status_code)
    return Outcome(False, response.status_code, response.text[:200] or response.reason_phrase)


async def _email(notifier: Notifier, notices: list[Notice]) -> Outcome:
    config = notifier.config
    message = EmailMessage()
    message["From"] = str(config["sender"])
    message["To"] = ", ".join(config["to"])
    message["Subject"] = headline(notices)
    message.set_content(text(notices))
    await aiosmtplib.send(
        message,
        hostname=str(config["smtp_host"]),
        port=int(config["smtp_port"]),
        start_tls=bool(config.get("starttls", False)),
        username=config.get("username") or None,
        password=notifier.secret if config.get("username") else None,
        timeout=SEND_SECONDS,
    )
    return Outcome(True)
