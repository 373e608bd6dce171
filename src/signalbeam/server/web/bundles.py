"""Bundles: list, versions with spec and diff, push from a YAML editor, assign to devices."""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from signalbeam.domain.errors import InvalidInput
from signalbeam.protocol.bundle_yaml import dump_yaml, load_yaml
from signalbeam.server.api.deps import RuntimeDep
from signalbeam.server.runtime import Runtime
from signalbeam.server.services import bundles as bundle_service
from signalbeam.server.services import fleet as fleet_service
from signalbeam.server.web.deps import CurrentUser, PostedForm, WebRoute, WebUser
from signalbeam.server.web.forms import FIELD_ERRORS, Form
from signalbeam.server.web.render import render

router = APIRouter(prefix="/bundles", route_class=WebRoute)
Param = Annotated[str, Query(max_length=200)]
EXAMPLE = """\
name: warehouse-monitor
version: 1.0.0
description: Reads the scales and reports to the warehouse system
containers:
  - name: monitor
    image: registry.example.com/monitor:1.0.0
"""


def bundle_url(name: str, **params: str) -> str:
    """The detail page of one bundle, optionally with a version or diff selected."""
    query = urlencode({k: v for k, v in params.items() if v})
    return "/bundles/" + quote(name, safe="") + (f"?{query}" if query else "")


@router.get("", include_in_schema=False)
async def page(request: Request, runtime: RuntimeDep, user: CurrentUser) -> Response:
    """Every bundle with its latest version and how many devices run it."""
    bundles = await bundle_service.list_bundles(runtime, user.actor)
    return render(request, "bundles.html", {"title": "Bundles", "bundles": bundles})


async def _editor(
    request: Request, runtime: Runtime, user: WebUser, form: Form, problems: list[str]
) -> Response:
    context = {"title": "Push a bundle version", "form": form, "problems": problems}
    return render(request, "bundle_push.html", context, 422 if form.errors else 200)


@router.get("/new", include_in_schema=False)
async def editor(
    request: Request, runtime: RuntimeDep, user: CurrentUser, base: Param = ""
) -> Response:
    """The YAML editor, prefilled with the latest version of `base` or an example."""
    text = EXAMPLE
    if base:
        latest = await bundle_service.show_version(runtime, user.actor, base, bundle_service.LATEST)
        text = dump_yaml(latest.version.spec)
    return await _editor(request, runtime, user, Form({"document": [text]}), [])


@router.post("/new", include_in_schema=False)
async def push(
    request: Request, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Validate and store the version; every problem is listed under the editor."""
    # Keep the text exactly as typed so the user can fix it in place.
    form.values["document"] = [(form.values.get("document") or [""])[0]]
    try:
        document = load_yaml(form.values["document"][0], source="YAML")
        pushed = await bundle_service.push(runtime, user.actor, document)
    except FIELD_ERRORS as err:
        form.fail("document", "The bundle was not pushed. Fix what is listed below and push again.")
        return await _editor(request, runtime, user, form, _problems(err.detail))
    version = pushed.version
    return RedirectResponse(
        bundle_url(version.name, version=version.version, pushed="1" if pushed.created else "0"),
        status_code=303,
    )


def _problems(detail: str) -> list[str]:
    """The validator's one-line list (`a: x; b[0].c: y`) as one entry per path."""
    return re.split(r"; (?=[\w.\[\]-]+: )", detail)


def _diff_lines(text: str) -> list[tuple[str, str]]:
    """Each diff line with a CSS class for colour (the text itself is escaped by Jinja)."""
    kinds = {"+": "add", "-": "del", "@": "hunk"}
    return [
        ("" if line.startswith(("+++", "---")) else kinds.get(line[:1], ""), line)
        for line in text.splitlines()
    ]


async def _detail_context(
    runtime: Runtime, user: WebUser, name: str, version: str, before: str, after: str
) -> dict[str, Any]:
    detail = await bundle_service.show(runtime, user.actor, name)
    selected = next((v for v in detail.versions if v.version.version == version), None)
    selected = selected or detail.versions[0]
    context: dict[str, Any] = {
        "title": name,
        "detail": detail,
        "selected": selected,
        "spec_yaml": dump_yaml(selected.version.spec),
        "before": before,
        "after": after,
        "diff": None,
        "groups": await fleet_service.group_names(runtime, user.actor),
    }
    if before and after:
        diff = await bundle_service.diff(runtime, user.actor, name, before, after)
        context["diff"] = {"lines": _diff_lines(diff.diff), "paths": diff.paths}
    return context


@router.get("/{name}", include_in_schema=False)
async def detail(
    request: Request,
    name: str,
    runtime: RuntimeDep,
    user: CurrentUser,
    version: Param = "",
    before: Param = "",
    after: Param = "",
    pushed: Param = "",
    assigned: Param = "",
) -> Response:
    """Versions, the selected version's spec, an optional diff, and the assign form."""
    context = await _detail_context(runtime, user, name, version, before, after)
    context.update(form=Form({}), pushed=pushed, assigned=assigned)
    return render(request, "bundle.html", context)


def _target(form: Form) -> bundle_service.Target:
    kind = form.get("target")
    if kind == "group":
        return bundle_service.Target(group=form.get("group"))
    if kind == "selector":
        return bundle_service.Target(selector=form.get("selector"))
    ids = [part.strip() for part in form.get("devices").replace("\n", ",").split(",")]
    return bundle_service.Target(devices=[i for i in ids if i])


@router.post("/{name}/assign", include_in_schema=False)
async def assign(
    request: Request, name: str, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Make a version the desired state of a group, a selector or a list of devices."""
    version = form.get("version") or bundle_service.LATEST
    try:
        if form.get("target") == "devices" and not form.get("devices"):
            raise InvalidInput("Enter one or more device ids.", field="devices")
        result = await bundle_service.assign(runtime, user.actor, name, version, _target(form))
    except FIELD_ERRORS as err:
        field = err.field if err.field in ("group", "selector", "devices") else "target"
        form.fail(field, err.detail)
        context = await _detail_context(runtime, user, name, version, "", "")
        context.update(form=form, pushed="", assigned="")
        return render(request, "bundle.html", context, 422)
    target = bundle_url(name, version=result.version.version, assigned=str(len(result.generations)))
    return RedirectResponse(target, status_code=303)
