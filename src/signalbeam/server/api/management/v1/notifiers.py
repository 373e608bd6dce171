"""Notifiers, their test sends and delivery logs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from signalbeam.server.api.deps import CurrentActor, RuntimeDep
from signalbeam.server.api.management.v1 import notifier_schemas as schemas
from signalbeam.server.api.management.v1.notifier_schemas import NotifierName
from signalbeam.server.db.models import Delivery, Notifier
from signalbeam.server.services import notifiers
from signalbeam.server.services.notifiers import LoggedDelivery, NotifierDraft

router = APIRouter(prefix="/alerts", tags=["alerts"])
DeliveryId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the delivery's id")]


def _public(notifier: Notifier) -> schemas.NotifierPublic:
    return schemas.NotifierPublic(
        name=notifier.name,
        kind=notifier.kind,
        min_severity=notifier.min_severity,
        selector=notifier.selector,
        config=notifier.config,
        has_secret=bool(notifier.secret),
        enabled=notifier.enabled,
        created_at=notifier.created_at,
        created_by=notifier.created_by,
    )


@router.get("/notifiers", response_model=list[schemas.NotifierPublic])
async def list_notifiers(runtime: RuntimeDep, actor: CurrentActor) -> list[schemas.NotifierPublic]:
    """Where your tenant's notifications go."""
    return [_public(n) for n in await notifiers.list_notifiers(runtime, actor)]


@router.post("/notifiers", response_model=schemas.NotifierCreated, status_code=201)
async def create(
    body: schemas.NotifierCreate, runtime: RuntimeDep, actor: CurrentActor
) -> schemas.NotifierCreated:
    """Add a notifier (admins). Secrets are write-only."""
    draft = NotifierDraft(
        name=body.name,
        kind=body.kind.value,
        url=body.url,
        secret=body.secret,
        min_severity=body.min_severity.value,
        selector=body.selector,
        smtp_host=body.smtp_host,
        smtp_port=body.smtp_port,
        starttls=body.starttls,
        username=body.username,
        sender=body.sender,
        to=tuple(body.to),
    )
    created = await notifiers.create(runtime, actor, draft)
    public = _public(created.notifier).model_dump()
    return schemas.NotifierCreated(**public, signing_key=created.signing_key)


@router.delete("/notifiers/{name}", status_code=204)
async def delete(name: NotifierName, runtime: RuntimeDep, actor: CurrentActor) -> Response:
    """Remove a notifier and its delivery log."""
    await notifiers.delete(runtime, actor, name)
    return Response(status_code=204)


@router.post("/notifiers/{name}/test", response_model=schemas.TestResult)
async def test(name: NotifierName, runtime: RuntimeDep, actor: CurrentActor) -> schemas.TestResult:
    """Send a test notification now; the answer says what the receiver said."""
    outcome = await notifiers.test(runtime, actor, name)
    return schemas.TestResult(
        delivered=outcome.delivered, status_code=outcome.status_code, detail=outcome.describe()
    )


def _delivery(logged: LoggedDelivery) -> schemas.DeliveryPublic:
    return _delivery_of(logged.delivery, logged)


def _delivery_of(d: Delivery, logged: LoggedDelivery | None) -> schemas.DeliveryPublic:
    attempts = logged.attempts if logged else []
    return schemas.DeliveryPublic(
        id=d.id,
        incident_id=d.incident_id,
        transition=d.transition,
        state=d.state,
        attempts=d.attempts,
        next_attempt_at=d.next_attempt_at,
        last_result=d.last_result,
        created_at=d.created_at,
        delivered_at=d.delivered_at,
        log=[
            schemas.AttemptPublic(
                at=a.at, status_code=a.status_code, error=a.error, grouped=a.grouped
            )
            for a in attempts
        ],
    )


@router.get("/notifiers/{name}/deliveries", response_model=list[schemas.DeliveryPublic])
async def deliveries(
    name: NotifierName, runtime: RuntimeDep, actor: CurrentActor
) -> list[schemas.DeliveryPublic]:
    """The notifier's latest deliveries, each with every attempt and what the receiver said."""
    return [_delivery(d) for d in await notifiers.deliveries(runtime, actor, name)]


@router.post("/deliveries/{delivery_id}/redeliver", response_model=schemas.DeliveryPublic)
async def redeliver(
    delivery_id: DeliveryId, runtime: RuntimeDep, actor: CurrentActor
) -> schemas.DeliveryPublic:
    """Send a delivery again, with fresh retries."""
    return _delivery_of(await notifiers.redeliver(runtime, actor, delivery_id), None)
