"""Notifiers of a tenant, and the deliveries and attempts owed to them."""

from __future__ import annotations

from sqlalchemy import func, select

from signalbeam.server.db.models import Delivery, DeliveryAttempt, Notifier
from signalbeam.server.repositories.base import TenantRepository

# Alert notifiers; a row with `events` set is a webhook.
ALERTS = Notifier.events.is_(None)


class NotifierRepository(TenantRepository):
    """Notifiers and deliveries of one tenant (webhooks are in `WebhookRepository`)."""

    async def all(self) -> list[Notifier]:
        query = select(Notifier).where(Notifier.tenant_id == self.tenant_id, ALERTS)
        return list(await self.session.scalars(query.order_by(Notifier.name)))

    async def enabled(self) -> list[Notifier]:
        query = select(Notifier).where(
            Notifier.tenant_id == self.tenant_id, Notifier.enabled.is_(True), ALERTS
        )
        return list(await self.session.scalars(query))

    async def get(self, name: str) -> Notifier | None:
        return await self.session.scalar(
            select(Notifier).where(
                Notifier.tenant_id == self.tenant_id, Notifier.name == name, ALERTS
            )
        )

    async def holder(self, name: str) -> Notifier | None:
        """The notifier or webhook that has this name: they share names."""
        return await self.session.scalar(
            select(Notifier).where(Notifier.tenant_id == self.tenant_id, Notifier.name == name)
        )

    async def add(self, notifier: Notifier) -> Notifier:
        notifier.tenant_id = self.tenant_id
        self.session.add(notifier)
        await self.session.flush()
        return notifier

    async def delete(self, notifier: Notifier) -> None:
        await self.session.delete(notifier)
        await self.session.flush()

    async def owed(self, notifier_id: int, incident_id: int | None, transition: str) -> bool:
        """Whether this transition is already queued for this notifier (never queue it twice)."""
        query = select(func.count()).where(
            Delivery.notifier_id == notifier_id,
            Delivery.incident_id == incident_id,
            Delivery.transition == transition,
        )
        return bool(await self.session.scalar(query))

    async def queue(self, delivery: Delivery) -> Delivery:
        delivery.tenant_id = self.tenant_id
        self.session.add(delivery)
        await self.session.flush()
        return delivery

    async def delivery(self, delivery_id: int) -> Delivery | None:
        return await self.session.scalar(
            select(Delivery).where(Delivery.tenant_id == self.tenant_id, Delivery.id == delivery_id)
        )

    async def log(
        self, notifier: Notifier, limit: int
    ) -> list[tuple[Delivery, list[DeliveryAttempt]]]:
        """The latest deliveries, newest first, each with its attempts oldest first.

        One statement, so one snapshot: read in two under PostgreSQL's read committed, an
        attempt could show up before the delivery row it was committed with says it was tried.
        """
        latest = (
            select(Delivery.id)
            .where(Delivery.tenant_id == self.tenant_id, Delivery.notifier_id == notifier.id)
            .order_by(Delivery.id.desc())
            .limit(limit)
            .subquery()
        )
        query = (
            select(Delivery, DeliveryAttempt)
            .join(latest, latest.c.id == Delivery.id)
            .outerjoin(DeliveryAttempt, DeliveryAttempt.delivery_id == Delivery.id)
            .order_by(Delivery.id.desc(), DeliveryAttempt.id)
        )
        found: dict[int, tuple[Delivery, list[DeliveryAttempt]]] = {}
        for delivery, attempt in await self.session.execute(query):
            _, attempts = found.setdefault(delivery.id, (delivery, []))
            if attempt is not None:
                attempts.append(attempt)
        return list(found.values())
