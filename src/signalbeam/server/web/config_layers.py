"""The config editor shared by the device and group pages: one layer's values as YAML, a
Preview of the change (a dry run) before Apply, write-only secrets, and the layer's history
with a rollback per version."""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import yaml
from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from signalbeam.domain.config import MAX_MESSAGE, Change, Patch
from signalbeam.domain.errors import InvalidInput
from signalbeam.server.runtime import Runtime
from signalbeam.server.services import config as config_service
from signalbeam.server.services.config import ConfigChangeResult, LayerRef, Write
from signalbeam.server.web.deps import WebUser
from signalbeam.server.web.forms import FIELD_ERRORS, Form

HISTORY = 50
# Page renders the whole page around the editor (device or group), with a form to show again.
Page = Callable[[Form | None, ConfigChangeResult | None], Awaitable[Response]]


class _Loader(yaml.SafeLoader):
    """YAML without timestamps: `2024-05-01` stays text, since config values are JSON."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def layer_yaml(values: dict[str, Any]) -> str:
    """A layer's values as the YAML the editor shows."""
    return yaml.safe_dump(values, sort_keys=True, allow_unicode=True) if values else ""


def parse_values(text: str) -> dict[str, Any]:
    """The editor's YAML (or JSON) as an object of JSON values; an InvalidInput on `values`."""
    try:
        document = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(err, "problem", None) or "cannot be read"
        raise InvalidInput(f"this is not valid YAML: {problem}{line}", field="values") from err
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise InvalidInput(
            "write the config as KEY: VALUE lines (an object), not a list or a single value",
            field="values",
        )
    _check_json(document, "")
    return document


def _check_json(value: Any, where: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInput(f"key {key!r}{_at(where)} is not text; quote it", field="values")
            _check_json(item, f"{where}.{key}" if where else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, f"{where}[{index}]")
    elif (isinstance(value, float) and not math.isfinite(value)) or not (
        value is None or isinstance(value, str | int | float | bool)
    ):
        raise InvalidInput(f"{where}: {value!r} is not a JSON value; quote it", field="values")


def _at(where: str) -> str:
    return f" in {where}" if where else ""


@dataclass(frozen=True)
class Editor:
    """One layer as the page shows it, with the URL its forms post to."""

    ref: LayerRef
    url: str

    async def context(
        self,
        runtime: Runtime,
        user: WebUser,
        form: Form | None,
        preview: ConfigChangeResult | None,
    ) -> dict[str, Any]:
        """What config_layer.html needs: the layer, its history, the form, any preview."""
        layer = await config_service.get_layer(runtime, user.actor, self.ref)
        entries, total = await config_service.history(runtime, user.actor, self.ref, HISTORY, 0)
        form = form or Form({})
        form.values.setdefault("document", [layer_yaml(layer.values)])
        return {
            "layer": layer,
            "layer_yaml": layer_yaml(layer.values),
            "describe": describe,
            "display": display,
            "layer_url": self.url,
            "history": entries,
            "history_total": total,
            "form": form,
            "preview": preview,
            "has_priority": self.ref.scope == "group",
        }

    async def change(self, runtime: Runtime, user: WebUser, form: Form, page: Page) -> Response:
        """Preview (a dry run, shown with Apply) or Apply the editor's document."""
        apply = form.get("action") == "apply"
        try:
            values = parse_values(form.values.get("document", [""])[0])
            write = Write(form.get("message")[:MAX_MESSAGE], _version(form), not apply, "values")
            result = await config_service.put(
                runtime, user.actor, self.ref, values, _priority(form), write
            )
        except FIELD_ERRORS as err:
            form.fail(_field(err.field), err.detail)
            return await page(form, None)
        if not apply:
            return await page(form, result)
        return self._done("unchanged" if result.unchanged else "applied", result.layer.version)

    async def set_secret(self, runtime: Runtime, user: WebUser, form: Form, page: Page) -> Response:
        """Set one secret; its value is never rendered again, not even on an error."""
        key = form.get("key")
        value = form.values.get("value", [""])[0]
        form.values.pop("value", None)
        if not key or not value:
            form.fail("secret", "Give the secret a key and a value.")
            return await page(form, None)
        return await self._patch(runtime, user, form, page, secrets={key: value})

    async def remove_secret(
        self, runtime: Runtime, user: WebUser, form: Form, page: Page
    ) -> Response:
        """Remove one secret from the layer."""
        return await self._patch(runtime, user, form, page, unset=(form.get("key"),))

    async def _patch(
        self,
        runtime: Runtime,
        user: WebUser,
        form: Form,
        page: Page,
        secrets: dict[str, Any] | None = None,
        unset: tuple[str, ...] = (),
    ) -> Response:
        change = Patch(set={}, unset=unset, secrets=secrets or {}, priority=None)
        write = Write("", None, False, "secrets")
        try:
            result = await config_service.patch(runtime, user.actor, self.ref, change, write)
        except FIELD_ERRORS as err:
            form.fail("secret", err.detail)
            return await page(form, None)
        done = "secret-removed" if unset else "secret-set"
        return self._done("unchanged" if result.unchanged else done, result.layer.version)

    async def rollback(self, runtime: Runtime, user: WebUser, form: Form, page: Page) -> Response:
        """A new version with an earlier version's values and secrets."""
        to = form.get("to")
        try:
            if not to.isdigit():
                raise InvalidInput("pick a version to roll back to", field="to")
            write = Write("", None, False, "to")
            result = await config_service.rollback(runtime, user.actor, self.ref, int(to), write)
        except FIELD_ERRORS as err:
            form.fail("history", err.detail)
            return await page(form, None)
        return self._done("unchanged" if result.unchanged else "rolled-back", result.layer.version)

    def _done(self, done: str, version: int) -> Response:
        # Post/Redirect/Get: a reload does not post again; the page words the outcome itself,
        # so its address cannot be made to show an arbitrary message.
        query = urlencode({"done": done, "version": version})
        return RedirectResponse(f"{self.url}?{query}", status_code=303)


def display(value: Any) -> str:
    """A value as people write it: text as is, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def describe(change: Change) -> str:
    """One change in words: `LOG_LEVEL: info → debug`, `PORT added: 8080`; secrets by name."""
    if change.secret:
        verb = {"added": "set", "removed": "removed", "changed": "changed"}[change.change]
        return f"secret {change.key} {verb}"
    if change.change == "added":
        return f"{change.key} added: {display(change.new)}"
    if change.change == "removed":
        return f"{change.key} removed (was {display(change.old)})"
    return f"{change.key}: {display(change.old)} \u2192 {display(change.new)}"


def _version(form: Form) -> int | None:
    text = form.get("expected_version")
    return int(text) if text.isdigit() else None


def _priority(form: Form) -> int | None:
    text = form.get("priority")
    if not text:
        return None
    try:
        return int(text)
    except ValueError as err:
        raise InvalidInput("priority must be a whole number", field="priority") from err


def _field(field: str | None) -> str:
    """A priority's error is shown at its field; every other one (a key, the size, the
    bundle's schema, someone else's newer version) at the editor."""
    return "priority" if field == "priority" else "values"


DONE = {
    "applied": "Applied: this is now version {version}.",
    "secret-set": "Secret set: this is now version {version}.",
    "secret-removed": "Secret removed: this is now version {version}.",
    "rolled-back": "Rolled back: version {version} has the chosen version's values and secrets.",
    "unchanged": "No change: nothing differed, so this stays at version {version}.",
}


def flash(request: Request) -> str | None:
    """The outcome a redirect after a change names, in the page's own words."""
    template = DONE.get(request.query_params.get("done", ""))
    version = request.query_params.get("version", "")
    return template.format(version=version) if template and version.isdigit() else None
