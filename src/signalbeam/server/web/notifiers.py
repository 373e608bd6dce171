"""Notifiers in the dashboard: list, add (a webhook's signing key shown once), remove, send a
test and show what the receiver answered, and each notifier's delivery log with Redeliver."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import RedirectResponse

from signalbeam.domain.alerts import Severity
from signalbeam.domain.errors import InvalidInput
from signalbeam.domain.notifications import NotifierKind
from signalbeam.server.api.deps import RuntimeDep
from signalbeam.server.runtime import Runtime
from signalbeam.server.services import notifiers as notifier_service
from signalbeam.server.services.notifiers import NotifierDraft
from signalbeam.server.web.deps import CurrentUser, PostedForm, WebRoute, WebUser
from signalbeam.server.web.forms import FIELD_ERRORS, Form
from signalbeam.server.web.render import render

router = APIRouter(prefix="/alerts", route_class=WebRoute)
NotifierName = Annotated[str, Path(max_length=63)]
DeliveryId = Annotated[int, Path(ge=1, le=2**63 - 1)]
NEW_NOTIFIER = {"kind": [NotifierKind.WEBHOOK.value], "smtp_port": ["587"], "starttls": ["on"]}


def notifier_url(name: str) -> str:
    """The page of one notifier: its settings and delivery log."""
    return "/alerts/notifiers/" + quote(name, safe="")


def draft_of(form: Form) -> NotifierDraft:
    """The notifier a form describes; InvalidInput names a field that cannot be read."""
    port_text = form.get("smtp_port") or "587"
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InvalidInput("smtp_port must be a port number from 1 to 65535", field="smtp_port")
    email = form.get("kind") == NotifierKind.EMAIL.value
    to = tuple(
        part.strip() for part in form.get("to").replace("\n", ",").split(",") if part.strip()
    )
    return NotifierDraft(
        name=form.get("name"),
        kind=form.get("kind"),
        url=form.optional("url"),
        # One secret per notifier: a webhook's signing key, or an email notifier's SMTP password.
        secret=form.optional("smtp_password" if email else "secret"),
        min_severity=form.get("min_severity") or Severity.WARNING.value,
        selector=form.optional("selector"),
        smtp_host=form.optional("smtp_host"),
        smtp_port=int(port_text),
        starttls=form.get("starttls") == "on",
        username=form.optional("username"),
        sender=form.optional("sender"),
        to=to,
    )


async def _list(
    request: Request,
    runtime: Runtime,
    user: WebUser,
    form: Form | None = None,
    created: Any = None,
) -> Response:
    context = {
        "title": "Notifiers",
        "tab": "notifiers",
        "notifiers": await notifier_service.list_notifiers(runtime, user.actor),
        "form": form or Form(dict(NEW_NOTIFIER)),
        "created": created,
        "kinds": [k.value for k in NotifierKind],
        "severities": [s.value for s in Severity],
    }
    return render(request, "notifiers.html", context, 422 if form and form.errors else 200)


@router.get("/notifiers", include_in_schema=False)
async def page(request: Request, runtime: RuntimeDep, user: CurrentUser) -> Response:
    """Where the tenant's notifications go, and the form to add a notifier."""
    return await _list(request, runtime, user)


@router.post("/notifiers", include_in_schema=False)
async def create(
    request: Request, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Add a notifier; a webhook's signing key, when the server made it, is shown this once."""
    try:
        created = await notifier_service.create(runtime, user.actor, draft_of(form))
    except FIELD_ERRORS as err:
        form.fail(err.field or "form", err.detail)
        return await _list(request, runtime, user, form)
    # Rendered, not redirected: the key must not survive in a URL or a reload.
    return await _list(request, runtime, user, created=created)


async def _detail(
    request: Request, runtime: Runtime, user: WebUser, name: str, tested: Any = None
) -> Response:
    notifiers = await notifier_service.list_notifiers(runtime, user.actor)
    found = next((n for n in notifiers if n.name == name), None)
    context = {
        "title": f"Notifier {name}",
        "tab": "notifiers",
        "deliveries": await notifier_service.deliveries(runtime, user.actor, name),
        "notifier": found,
        "tested": tested,
        "notifier_url": notifier_url(name),
    }
    return render(request, "notifier.html", context)


@router.get("/notifiers/{name}", include_in_schema=False)
async def detail(
    request: Request, name: NotifierName, runtime: RuntimeDep, user: CurrentUser
) -> Response:
    """One notifier and its delivery log: state, attempts, what the receiver last answered."""
    return await _detail(request, runtime, user, name)


@router.post("/notifiers/{name}/test", include_in_schema=False)
async def test(
    request: Request, name: NotifierName, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Send a test notification now and show what the receiver answered."""
    outcome = await notifier_service.test(runtime, user.actor, name)
    return await _detail(request, runtime, user, name, tested=outcome)


@router.post("/notifiers/{name}/delete", include_in_schema=False)
async def delete(
    name: NotifierName, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Remove a notifier and its delivery log."""
    await notifier_service.delete(runtime, user.actor, name)
    return RedirectResponse("/alerts/notifiers", status_code=303)


@router.post("/deliveries/{delivery_id}/redeliver", include_in_schema=False)
async def redeliver(
    delivery_id: DeliveryId, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Send a delivery again with fresh retries; back to its notifier's log."""
    await notifier_service.redeliver(runtime, user.actor, delivery_id)
    back = form.get("notifier")
    return RedirectResponse(notifier_url(back) if back else "/alerts/notifiers", status_code=303)
