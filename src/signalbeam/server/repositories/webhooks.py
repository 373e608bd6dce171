"""Webhooks of a tenant: notifiers subscribed to recorded events (their deliveries are in
`NotifierRepository`, shared with alert notifications)."""

from __future__ import annotations

from sqlalchemy import select

from signalbeam.server.db.models import Notifier
from signalbeam.server.repositories.base import TenantRepository

# A webhook is stored as a notifier row with `events` set.
Webhook = Notifier
WEBHOOKS = Notifier.events.is_not(None)


class WebhookRepository(TenantRepository):
    """Webhooks of one tenant."""

    async def all(self) -> list[Webhook]:
        query = select(Notifier).where(Notifier.tenant_id == self.tenant_id, WEBHOOKS)
        return list(await self.session.scalars(query.order_by(Notifier.name)))

    async def get(self, name: str) -> Webhook | None:
        return await self.session.scalar(
            select(Notifier).where(
                Notifier.tenant_id == self.tenant_id, Notifier.name == name, WEBHOOKS
            )
        )

    async def add(self, webhook: Webhook) -> Webhook:
        webhook.tenant_id = self.tenant_id
        self.session.add(webhook)
        await self.session.flush()
        return webhook

    async def delete(self, webhook: Webhook) -> None:
        await self.session.delete(webhook)
        await self.session.flush()
