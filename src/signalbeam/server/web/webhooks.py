"""Webhooks in the dashboard: the list with each one's last delivery, add (a signing key the
server makes is shown once), edit, remove, send a test, and one webhook's delivery log with
every attempt's status code and Redeliver. The roles are the API's: viewers read, operators
test and redeliver, admins add, change and remove."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import RedirectResponse

from signalbeam.domain.errors import InvalidInput
from signalbeam.domain.webhooks import FAMILIES, MAX_EVENT_TYPES, split
from signalbeam.server.api.deps import RuntimeDep
from signalbeam.server.repositories.webhooks import Webhook
from signalbeam.server.runtime import Runtime
from signalbeam.server.services import webhooks as webhook_service
from signalbeam.server.services.notifications import Outcome
from signalbeam.server.services.webhooks import Created, WebhookChange, WebhookDraft
from signalbeam.server.web.deps import CurrentUser, PostedForm, WebRoute, WebUser
from signalbeam.server.web.forms import FIELD_ERRORS, Form
from signalbeam.server.web.render import render

router = APIRouter(prefix="/webhooks", route_class=WebRoute)
WebhookName = Annotated[str, Path(max_length=63)]
DeliveryId = Annotated[int, Path(ge=1, le=2**63 - 1)]
NEW_WEBHOOK = {"enabled": ["on"]}
# The API's limits, so the dashboard refuses what the API would, by the field.
MAX_TEXT = 2000
SECRET_LENGTHS = (16, 500)


def webhook_url(name: str) -> str:
    """The page of one webhook: its settings, edit form and delivery log."""
    return "/webhooks/" + quote(name, safe="")


def events_of(form: Form) -> tuple[str, ...]:
    """The event types typed, split on commas, spaces or new lines."""
    text = form.get("events").replace(",", " ")
    events = tuple(text.split())
    if len(events) > MAX_EVENT_TYPES:
        raise InvalidInput(
            f"a webhook takes at most {MAX_EVENT_TYPES} event types; use a family such as "
            "device.* instead of listing its types",
            field="events",
        )
    return events


def secret_of(form: Form) -> str | None:
    """The signing key typed, or None (left empty: made on create, kept on edit)."""
    secret = form.optional("secret")
    low, high = SECRET_LENGTHS
    if secret is not None and not low <= len(secret) <= high:
        raise InvalidInput(
            f"a signing key needs {low} to {high} characters; leave it empty and one is made",
            field="secret",
        )
    return secret


def _text(form: Form, name: str) -> str:
    value = form.get(name)
    if len(value) > MAX_TEXT:
        raise InvalidInput(f"{name} is longer than {MAX_TEXT} characters", field=name)
    return value


def draft_of(form: Form) -> WebhookDraft:
    """The webhook a form describes; InvalidInput names a field that cannot be read."""
    return WebhookDraft(
        name=form.get("name"),
        url=_text(form, "url"),
        events=events_of(form),
        selector=_text(form, "selector") or None,
        enabled=form.get("enabled") == "on",
        secret=secret_of(form),
    )


def change_of(form: Form) -> WebhookChange:
    """What the edit form changes: everything it shows; an empty key keeps the one set."""
    return WebhookChange(
        url=_text(form, "url"),
        events=events_of(form),
        selector=_text(form, "selector"),  # blank clears it: every device
        enabled=form.get("enabled") == "on",
        secret=secret_of(form),
    )


def form_of(webhook: Webhook) -> Form:
    """The edit form filled in with a webhook's settings (never its signing key)."""
    return Form(
        {
            "url": [str(webhook.config["url"])],
            "events": [", ".join(split(webhook.events or ""))],
            "selector": [webhook.selector or ""],
            "enabled": ["on" if webhook.enabled else ""],
        }
    )


async def _list(
    request: Request,
    runtime: Runtime,
    user: WebUser,
    form: Form | None = None,
    created: Created | None = None,
) -> Response:
    rows = []
    for webhook in await webhook_service.list_webhooks(runtime, user.actor):
        log = await webhook_service.deliveries(runtime, user.actor, webhook.name)
        rows.append((webhook, log[0].delivery if log else None))
    context = {
        "title": "Webhooks",
        "rows": rows,
        "form": form or Form(dict(NEW_WEBHOOK)),
        "created": created,
        "families": sorted(FAMILIES),
    }
    return render(request, "webhooks.html", context, 422 if form and form.errors else 200)


@router.get("", include_in_schema=False)
async def page(request: Request, runtime: RuntimeDep, user: CurrentUser) -> Response:
    """Where the tenant's events are sent, and the form to add a webhook."""
    return await _list(request, runtime, user)


@router.post("", include_in_schema=False)
async def create(
    request: Request, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Add a webhook; a signing key the server made is shown this once."""
    try:
        created = await webhook_service.create(runtime, user.actor, draft_of(form))
    except FIELD_ERRORS as err:
        form.fail(err.field or "form", err.detail)
        return await _list(request, runtime, user, form)
    # Rendered, not redirected: the key must not survive in a URL or a reload.
    return await _list(request, runtime, user, created=created)


async def _detail(
    request: Request,
    runtime: Runtime,
    user: WebUser,
    name: str,
    form: Form | None = None,
    tested: Outcome | None = None,
) -> Response:
    webhook = await webhook_service.show(runtime, user.actor, name)
    context: dict[str, Any] = {
        "title": f"Webhook {name}",
        "webhook": webhook,
        "events": split(webhook.events or ""),
        "deliveries": await webhook_service.deliveries(runtime, user.actor, name),
        "form": form or form_of(webhook),
        "tested": tested,
        "webhook_url": webhook_url(name),
        "families": sorted(FAMILIES),
    }
    return render(request, "webhook.html", context, 422 if form and form.errors else 200)


@router.get("/{name}", include_in_schema=False)
async def detail(
    request: Request, name: WebhookName, runtime: RuntimeDep, user: CurrentUser
) -> Response:
    """One webhook, the form to change it, and its delivery log."""
    return await _detail(request, runtime, user, name)


@router.post("/{name}", include_in_schema=False)
async def edit(
    request: Request, name: WebhookName, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Change the URL, events, selector, on/off or signing key; the name stays."""
    try:
        await webhook_service.update(runtime, user.actor, name, change_of(form))
    except FIELD_ERRORS as err:
        form.fail(err.field or "form", err.detail)
        return await _detail(request, runtime, user, name, form=form)
    return RedirectResponse(webhook_url(name), status_code=303)


@router.post("/{name}/test", include_in_schema=False)
async def test(
    request: Request, name: WebhookName, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Send a `webhook.test` event now and show what the receiver answered."""
    outcome = await webhook_service.test(runtime, user.actor, name)
    return await _detail(request, runtime, user, name, tested=outcome)


@router.post("/{name}/delete", include_in_schema=False)
async def delete(
    name: WebhookName, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Remove a webhook and its delivery log."""
    await webhook_service.delete(runtime, user.actor, name)
    return RedirectResponse("/webhooks", status_code=303)


@router.post("/{name}/deliveries/{delivery_id}/redeliver", include_in_schema=False)
async def redeliver(
    name: WebhookName,
    delivery_id: DeliveryId,
    runtime: RuntimeDep,
    user: CurrentUser,
    form: PostedForm,
) -> Response:
    """Send one of the webhook's deliveries again, with fresh retries; back to its log."""
    await webhook_service.redeliver(runtime, user.actor, name, delivery_id)
    return RedirectResponse(webhook_url(name), status_code=303)
