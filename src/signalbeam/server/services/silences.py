"""Silences and maintenance windows: created, listed and ended by operators; consulted when a
notice is queued, so a muted notice is logged as silenced and never sent."""

from __future__ import annotations

from datetime import UTC, datetime

from signalbeam.domain.errors import NotFound
from signalbeam.domain.maintenance import parse_windows
from signalbeam.domain.model import EventType, Role
from signalbeam.domain.selectors import parse_selector
from signalbeam.domain.silences import Silence, check_silence
from signalbeam.server.db.models import AlertSilence
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.context import Actor, UnitOfWork


def silence_of(row: AlertSilence) -> Silence:
    """The domain form of a stored silence."""
    selector = parse_selector(row.selector) if row.selector else None
    windows = parse_windows(row.window) if row.window else ()
    return Silence(row.starts_at, row.ends_at, windows, selector, row.rule)


async def active(uow: UnitOfWork, now: datetime) -> list[Silence]:
    """The tenant's silences that have not ended (each says itself whether it mutes now)."""
    return [silence_of(row) for row in await uow.silences.current(now)]


async def create(
    runtime: Runtime,
    actor: Actor,
    *,
    for_: str | None,
    window: str | None,
    until: datetime | None,
    selector: str | None,
    rule: str | None,
    comment: str,
) -> AlertSilence:
    """Mute notifications (operators and admins); incidents still open and show."""
    actor.require(Role.OPERATOR)
    now = datetime.now(UTC)
    silence = check_silence(now, for_, window, until, selector, rule)
    async with runtime.unit_of_work(actor) as uow:
        if rule is not None and await uow.alert_rules.get(rule) is None:
            raise NotFound(f'no alert rule "{rule}"', field="rule")
        row = await uow.silences.add(
            AlertSilence(
                selector=str(silence.selector) if silence.selector else None,
                rule=rule,
                window=window or None,
                starts_at=now,
                ends_at=silence.ends_at,
                comment=comment,
                created_at=now,
                created_by=str(actor),
            )
        )
        what = f"selector {row.selector}" if row.selector else "every device"
        uow.record(
            EventType.ALERT_RULE_CHANGED,
            f"notifications silenced for {what}"
            + (f", rule {rule}" if rule else "")
            + (f": {comment}" if comment else ""),
            data={"silence_id": row.id, "change": "silenced"},
        )
        await uow.commit()
    return row


async def current(runtime: Runtime, actor: Actor) -> list[AlertSilence]:
    """Silences that have not ended."""
    async with runtime.unit_of_work(actor) as uow:
        return await uow.silences.current(datetime.now(UTC))


async def end(runtime: Runtime, actor: Actor, silence_id: int) -> AlertSilence:
    """End a silence now (it stays in the activity log)."""
    actor.require(Role.OPERATOR)
    now = datetime.now(UTC)
    async with runtime.unit_of_work(actor) as uow:
        row = await uow.silences.get(silence_id)
        if row is None or (row.ends_at is not None and row.ends_at <= now):
            raise NotFound(f"no current silence {silence_id}", field="silence")
        row.ends_at = now
        uow.record(
            EventType.ALERT_RULE_CHANGED,
            f"silence {silence_id} ended",
            data={"silence_id": silence_id, "change": "unsilenced"},
        )
        await uow.commit()
    return row
