"""How `signalbeam config` reads values people type and shows layers, changes and origins."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import typer
import yaml

from signalbeam.cli.output import CliError, ago

SECRET_SET = "(secret, set)"  # noqa: S105 - what is shown instead of a secret
VALUE_HELP = (
    "VALUE is read as JSON when it is JSON: 8080 is a number, true/false/null, "
    '[1, 2] and {"a": 1} are lists and objects, and "8080" (quoted, so write \'X="8080"\' in '
    "a shell) is text; anything else (debug, 1.2.3, 0640) is text as typed."
)


def _no_constants(name: str) -> float:
    # NaN and Infinity are not JSON, whatever Python's json module accepts.
    raise ValueError(name)


def parse_value(text: str) -> Any:
    """A typed VALUE: JSON when it parses as JSON, else the text itself."""
    try:
        return json.loads(text, parse_constant=_no_constants)
    except ValueError:
        return text


def display(value: Any) -> str:
    """A value as `config set` would take it back: plain text unless that would read as
    something else (a number, true, JSON), then JSON."""
    if isinstance(value, str) and "\n" not in value and parse_value(value) == value:
        return value
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def assignment(text: str, option: str = "KEY=VALUE") -> tuple[str, str]:
    """`KEY=VALUE` split at the first `=`."""
    key, equals, value = text.partition("=")
    if not equals or not key.strip():
        raise CliError(
            f'"{text}" is not {option}: write LOG_LEVEL=debug (and `signalbeam config unset '
            "KEY` to remove a key)"
        )
    return key.strip(), value


def secret_value(text: str) -> tuple[str, str]:
    """`KEY=VALUE`, or `KEY` alone: then the value is asked for without echo (or read from
    stdin), so it stays out of the shell history and the process list."""
    if "=" in text:
        return assignment(text, "KEY=VALUE or KEY")
    if not sys.stdin.isatty():
        # Piped: one line per secret, in the order given, without a prompt to answer.
        line = sys.stdin.readline()
        if not line:
            raise CliError(f"--secret {text}: no value on stdin (one line per secret)")
        return text.strip(), line.rstrip("\r\n")
    value: str = typer.prompt(f"Value of secret {text}", hide_input=True)
    return text.strip(), value


_MARKS = {"added": "+", "removed": "-", "changed": "~"}
_SECRET_VERBS = {"added": "set", "removed": "removed", "changed": "changed"}


def change_line(change: Mapping[str, Any]) -> str:
    """One change: `+ KEY=VALUE`, `- KEY (was VALUE)`, `~ KEY: OLD -> NEW`; secrets by name."""
    key, kind = change["key"], change["change"]
    if change["secret"]:
        return f"{_MARKS[kind]} {key} (secret {_SECRET_VERBS[kind]})"
    if kind == "added":
        return f"+ {key}={display(change['new'])}"
    if kind == "removed":
        return f"- {key} (was {display(change['old'])})"
    return f"~ {key}: {display(change['old'])} -> {display(change['new'])}"


def print_changes(changes: Iterable[Mapping[str, Any]]) -> None:
    """Each change on its own line, or a line saying there is none."""
    for line in [change_line(c) for c in changes] or ["(no key changes)"]:
        typer.echo(f"  {line}")


def devices_text(count: int) -> str:
    return f"{count} device" + ("" if count == 1 else "s")


def print_layer(layer: Mapping[str, Any], label: str) -> None:
    """A layer's values as KEY=VALUE lines under one line saying which version this is."""
    if layer["version"] == 0:
        typer.echo(f"{label} has no config yet.")
        return
    about = [f"{label}, version {layer['version']}"]
    if layer["scope"] == "group":
        about.append(f"priority {layer['priority']}")
    about.append(f"by {layer['author']} {ago(layer['created_at'])}")
    if layer["message"]:
        about.append(f'"{layer["message"]}"')
    typer.echo(" · ".join(about))
    lines = [(key, display(value)) for key, value in layer["values"].items()]
    lines += [(key, SECRET_SET) for key in layer["secrets"]]
    for key, shown in sorted(lines):
        typer.echo(f"{key}={shown}")
    if not lines:
        typer.echo("(no keys)")


def print_effective(found: Mapping[str, Any]) -> None:
    """`KEY=VALUE  (origin)` lines, aligned, then the device's config status."""
    rows = [
        (f"{i['key']}={SECRET_SET if i['secret'] else display(i['value'])}", i["origin"])
        for i in found["items"]
    ]
    width = max((len(text) for text, _ in rows), default=0)
    for text, origin in rows:
        typer.echo(f"{text.ljust(width)}  ({origin})")
    if not rows:
        typer.echo(f"{found['device_id']} has no config: no layer reaches it.")
    typer.echo(status_line(found["status"], found["digest"]))


def status_line(status: Mapping[str, Any], digest: str | None) -> str:
    """`status: applied (sha256:...)`, `pending`, `failed: why`, or `none`."""
    state = status["state"]
    if state == "applied":
        return f"status: applied ({digest})"
    if state == "failed":
        return f"status: failed: {status['reason'] or 'no reason given'}"
    if state == "pending":
        return f"status: pending (the device has not reported {digest} applied yet)"
    return "status: none (the device runs no bundle, so it is given no config)"


def history_changes(changes: Iterable[Mapping[str, Any]]) -> str:
    """`LOG_LEVEL changed, PORT added` for a history row."""
    return ", ".join(f"{c['key']} {c['change']}" for c in changes) or "-"


class _Loader(yaml.SafeLoader):
    """YAML without timestamps: `2024-05-01` stays text, since config values are JSON."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def layer_yaml(layer: Mapping[str, Any], label: str) -> str:
    """The text `config edit` opens: a comment saying what it is, then the values as YAML."""
    secrets = ", ".join(layer["secrets"]) or "none"
    head = [
        f"# Config of {label}, version {layer['version']}: top-level keys and their values.",
        "# A key set here replaces the same key of lower layers as a whole (no deep merge).",
        f"# Secrets (never shown; change them with `config set --secret KEY`): {secrets}",
        "# Save and quit to see the changes before anything is applied.",
    ]
    values = layer["values"]
    body = yaml.safe_dump(dict(values), sort_keys=True, allow_unicode=True) if values else ""
    return "\n".join(head) + "\n" + body


def parse_document(text: str, where: str) -> dict[str, Any]:
    """An edited or given document: a YAML or JSON object of JSON values (empty: no values)."""
    try:
        document = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        raise CliError(f"{where} is not valid YAML: {_yaml_reason(err)}") from err
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise CliError(f"{where} must be an object of KEY: VALUE lines, not a {_kind(document)}")
    for key, value in document.items():
        if not isinstance(key, str):
            raise CliError(f"{where}: key {key!r} is not text; quote it")
        _check_json(value, f"{where}: {key}")
    return document


def _check_json(value: Any, where: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CliError(f"{where}: key {key!r} is not text; quote it")
            _check_json(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, f"{where}[{index}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise CliError(f"{where}: {value} is not a JSON number; quote it to keep it as text")
    elif value is not None and not isinstance(value, str | int | float | bool):
        raise CliError(f"{where}: a {_kind(value)} is not a JSON value; quote it")


def _kind(value: Any) -> str:
    return {list: "list", str: "text", int: "number", float: "number", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


def _yaml_reason(err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err)
    return f"{problem} (line {mark.line + 1})" if mark is not None else str(problem)
