"""Webhooks: events POSTed to a URL, their test sends and delivery logs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from signalbeam.domain.webhooks import split
from signalbeam.server.api.deps import CurrentActor, RuntimeDep
from signalbeam.server.api.management.v1 import webhook_schemas as schemas
from signalbeam.server.api.management.v1.field_rules import MAX_ID
from signalbeam.server.api.management.v1.notifier_schemas import AttemptPublic, TestResult
from signalbeam.server.api.management.v1.webhook_schemas import WebhookName
from signalbeam.server.db.models import Delivery, DeliveryAttempt
from signalbeam.server.repositories.webhooks import Webhook
from signalbeam.server.services import webhooks
from signalbeam.server.services.webhooks import WebhookChange, WebhookDraft

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
DeliveryId = Annotated[int, Path(ge=1, le=MAX_ID, description="the delivery's id")]


def _public(webhook: Webhook) -> schemas.WebhookPublic:
    return schemas.WebhookPublic(
        name=webhook.name,
        url=str(webhook.config["url"]),
        events=list(split(webhook.events or "")),
        selector=webhook.selector,
        enabled=webhook.enabled,
        has_secret=bool(webhook.secret),
        created_at=webhook.created_at,
        created_by=webhook.created_by,
    )


@router.get("", response_model=list[schemas.WebhookPublic])
async def list_webhooks(runtime: RuntimeDep, actor: CurrentActor) -> list[schemas.WebhookPublic]:
    """Where your tenant's events are sent."""
    return [_public(w) for w in await webhooks.list_webhooks(runtime, actor)]


@router.post("", response_model=schemas.WebhookCreated, status_code=201)
async def create_webhook(
    body: schemas.WebhookCreate, runtime: RuntimeDep, actor: CurrentActor
) -> schemas.WebhookCreated:
    """Add a webhook (admins). Its signing key is write-only: made and shown once if left out."""
    draft = WebhookDraft(
        name=body.name,
        url=body.url,
        events=tuple(body.events),
        selector=body.selector,
        enabled=body.enabled,
        secret=body.secret,
    )
    created = await webhooks.create(runtime, actor, draft)
    return schemas.WebhookCreated(**_public(created.webhook).model_dump(), secret=created.secret)


@router.get("/{name}", response_model=schemas.WebhookPublic)
async def show_webhook(
    name: WebhookName, runtime: RuntimeDep, actor: CurrentActor
) -> schemas.WebhookPublic:
    """One webhook."""
    return _public(await webhooks.show(runtime, actor, name))


@router.patch("/{name}", response_model=schemas.WebhookPublic)
async def update_webhook(
    name: WebhookName, body: schemas.WebhookUpdate, runtime: RuntimeDep, actor: CurrentActor
) -> schemas.WebhookPublic:
    """Change a webhook's URL, events, selector, signing key or switch it off; the rest stay."""
    given = body.model_fields_set
    change = WebhookChange(
        url=body.url,
        events=tuple(body.events) if body.events is not None else None,
        selector=(body.selector or "") if "selector" in given else None,
        enabled=body.enabled,
        secret=body.secret,
    )
    return _public(await webhooks.update(runtime, actor, name, change))


@router.delete("/{name}", status_code=204)
async def delete_webhook(name: WebhookName, runtime: RuntimeDep, actor: CurrentActor) -> Response:
    """Remove a webhook and its delivery log."""
    await webhooks.delete(runtime, actor, name)
    return Response(status_code=204)


@router.post("/{name}/test", response_model=TestResult)
async def test_webhook(name: WebhookName, runtime: RuntimeDep, actor: CurrentActor) -> TestResult:
    """Send a `webhook.test` event now; the answer says what the receiver said."""
    outcome = await webhooks.test(runtime, actor, name)
    return TestResult(
        delivered=outcome.delivered, status_code=outcome.status_code, detail=outcome.describe()
    )


def _delivery(d: Delivery, attempts: list[DeliveryAttempt]) -> schemas.WebhookDeliveryPublic:
    return schemas.WebhookDeliveryPublic(
        id=d.id,
        event_id=d.event_id,
        event_type=d.transition,
        state=d.state,
        attempts=d.attempts,
        next_attempt_at=d.next_attempt_at,
        last_result=d.last_result,
        created_at=d.created_at,
        delivered_at=d.delivered_at,
        log=[
            AttemptPublic(at=a.at, status_code=a.status_code, error=a.error, grouped=a.grouped)
            for a in attempts
        ],
    )


@router.get("/{name}/deliveries", response_model=list[schemas.WebhookDeliveryPublic])
async def webhook_deliveries(
    name: WebhookName, runtime: RuntimeDep, actor: CurrentActor
) -> list[schemas.WebhookDeliveryPublic]:
    """The webhook's latest deliveries, each with every attempt and what the receiver said."""
    found = await webhooks.deliveries(runtime, actor, name)
    return [_delivery(logged.delivery, logged.attempts) for logged in found]


@router.post(
    "/{name}/deliveries/{delivery_id}/redeliver", response_model=schemas.WebhookDeliveryPublic
)
async def redeliver_webhook(
    name: WebhookName, delivery_id: DeliveryId, runtime: RuntimeDep, actor: CurrentActor
) -> schemas.WebhookDeliveryPublic:
    """Send one of the webhook's deliveries again, with fresh retries."""
    return _delivery(await webhooks.redeliver(runtime, actor, name, delivery_id), [])
