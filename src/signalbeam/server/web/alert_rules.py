"""Alert rules in the dashboard: the list, create, edit and delete forms (errors by the field,
worded as the API words them) and a preview of which devices would fire now."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import RedirectResponse

from signalbeam.domain.alerts import METRICS, RULE_NAME_PATTERN, RuleKind, Severity
from signalbeam.domain.errors import InvalidInput
from signalbeam.server.api.deps import RuntimeDep
from signalbeam.server.runtime import Runtime
from signalbeam.server.services import alert_rules as rule_service
from signalbeam.server.services import fleet as fleet_service
from signalbeam.server.services.alert_rules import RuleDraft, spec_of
from signalbeam.server.web.deps import CurrentUser, PostedForm, WebRoute, WebUser
from signalbeam.server.web.forms import FIELD_ERRORS, Form
from signalbeam.server.web.render import render

router = APIRouter(prefix="/alerts/rules", route_class=WebRoute)
RuleName = Annotated[str, Path(pattern=RULE_NAME_PATTERN)]
Text = Annotated[str, Query(max_length=2000)]
NEW_RULE = {"kind": [RuleKind.DEVICE_OFFLINE.value], "for": ["5m"], "enabled": ["on"]}


def rule_url(name: str) -> str:
    """The edit page of one rule."""
    return "/alerts/rules/" + quote(name, safe="")


def _choices() -> dict[str, Any]:
    return {
        "kinds": [k.value for k in RuleKind],
        "delayed": [k.value for k in RuleKind if k.delayed],
        "severities": [s.value for s in Severity],
        "metrics": list(METRICS),
    }


def threshold_of(form: Form) -> float | None:
    """The threshold typed, as a number; InvalidInput by its field when it is not one."""
    text = form.get("threshold")
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise InvalidInput(
            f"threshold {text[:40]!r} is not a number; give one such as 85", field="threshold"
        ) from None


def draft_of(form: Form, name: str | None = None) -> RuleDraft:
    """The rule a form describes; empty fields are left out, as the API's omitted ones."""
    return RuleDraft(
        name=name or form.get("name"),
        kind=form.get("kind"),
        severity=form.get("severity") or Severity.WARNING.value,
        for_=form.optional("for"),
        selector=form.optional("selector"),
        group=form.optional("group"),
        enabled=form.get("enabled") == "on",
        metric=form.optional("metric"),
        threshold=threshold_of(form),
        mount=form.optional("mount"),
    )


async def _list(request: Request, runtime: Runtime, user: WebUser, form: Form | None) -> Response:
    rules = await rule_service.list_rules(runtime, user.actor)
    context = {
        "title": "Alert rules",
        "tab": "rules",
        "rules": [(rule, spec_of(rule).describe()) for rule in rules],
        "groups": await fleet_service.group_names(runtime, user.actor),
        "form": form or Form(dict(NEW_RULE)),
        **_choices(),
    }
    return render(request, "alert_rules.html", context, 422 if form and form.errors else 200)


@router.get("", include_in_schema=False)
async def page(request: Request, runtime: RuntimeDep, user: CurrentUser) -> Response:
    """Every rule, and the form to add one."""
    return await _list(request, runtime, user, None)


@router.post("", include_in_schema=False)
async def create(
    request: Request, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Add a rule; a mistake is shown next to its field."""
    try:
        await rule_service.create(runtime, user.actor, draft_of(form))
    except FIELD_ERRORS as err:
        form.fail(err.field or "form", err.detail)
        return await _list(request, runtime, user, form)
    return RedirectResponse("/alerts/rules", status_code=303)


@router.get("/preview", include_in_schema=False)
async def preview(
    request: Request,
    runtime: RuntimeDep,
    user: CurrentUser,
    kind: Text = "",
    severity: Text = "",
    for_: Annotated[str, Query(alias="for", max_length=100)] = "",
    selector: Text = "",
    group: Text = "",
    metric: Text = "",
    threshold: Text = "",
    mount: Text = "",
) -> Response:
    """Which devices (or rollouts) the rule in the form would fire on now."""
    values = {"kind": kind, "severity": severity, "for": for_, "selector": selector}
    metric_values = {"metric": metric, "threshold": threshold, "mount": mount}
    form = Form(
        {key: [value] for key, value in {**values, "group": group, **metric_values}.items()}
    )
    context: dict[str, Any] = {"preview": None, "error": None}
    try:
        # A name is not needed to preview; a placeholder keeps the name check quiet.
        draft = draft_of(form, name="preview")
        context["preview"] = await rule_service.preview(runtime, user.actor, draft)
    except FIELD_ERRORS as err:
        context["error"] = err.detail
    return render(request, "alert_preview.html", context)


async def _edit_page(
    request: Request, runtime: Runtime, user: WebUser, name: str, form: Form | None
) -> Response:
    rule = await rule_service.get(runtime, user.actor, name)
    spec = spec_of(rule)
    if form is None:
        form = Form(
            {
                "severity": [rule.severity],
                "for": [f"{rule.for_seconds}s" if spec.kind.delayed else ""],
                "selector": [rule.selector or ""],
                "group": [rule.group_name or ""],
                "enabled": ["on" if rule.enabled else ""],
                "metric": [rule.metric or ""],
                "threshold": ["" if rule.threshold is None else f"{rule.threshold:g}"],
                "mount": [rule.mount or ""],
            }
        )
    context = {
        "title": f"Rule {rule.name}",
        "tab": "rules",
        "rule": rule,
        "description": spec.describe(),
        "form": form,
        "groups": await fleet_service.group_names(runtime, user.actor),
        "rule_url": rule_url(rule.name),
        **_choices(),
    }
    return render(request, "alert_rule.html", context, 422 if form.errors else 200)


@router.get("/{name}", include_in_schema=False)
async def detail(
    request: Request, name: RuleName, runtime: RuntimeDep, user: CurrentUser
) -> Response:
    """One rule, with the form to change it."""
    return await _edit_page(request, runtime, user, name, None)


@router.post("/{name}", include_in_schema=False)
async def edit(
    request: Request, name: RuleName, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Change severity, `for`, scope or on/off; kind and name stay."""
    changes: dict[str, object] = {
        "severity": form.get("severity") or Severity.WARNING.value,
        "selector": form.optional("selector"),
        "group": form.optional("group"),
        "enabled": form.get("enabled") == "on",
    }
    if "threshold" in form.values:
        # Only metric rules show threshold and mount; the others keep theirs (none).
        changes.update(threshold=form.get("threshold"), mount=form.optional("mount"))
    if "for" in form.values:
        # Only rules that wait (device offline) show `for`; the others keep theirs (none).
        changes["for"] = form.optional("for")
    try:
        if "threshold" in changes:
            changes["threshold"] = threshold_of(form)
        await rule_service.edit(runtime, user.actor, name, changes)
    except FIELD_ERRORS as err:
        form.fail(err.field or "form", err.detail)
        return await _edit_page(request, runtime, user, name, form)
    return RedirectResponse("/alerts/rules", status_code=303)


@router.post("/{name}/delete", include_in_schema=False)
async def delete(
    name: RuleName, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Delete a rule and its incidents."""
    await rule_service.delete(runtime, user.actor, name)
    return RedirectResponse("/alerts/rules", status_code=303)
