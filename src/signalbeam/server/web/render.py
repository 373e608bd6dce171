"""Jinja2 rendering for the dashboard: one autoescaping environment, filters, safe headers."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from signalbeam import __version__

TEMPLATES = Path(__file__).parent / "templates"
# Scripts come only from this server; styles may be set inline because uPlot and htmx do so.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """`12s ago`, `5m ago`, `3h ago`, `4d ago`, or `never`."""
    if value is None:
        return "never"
    seconds = int(((now or datetime.now(UTC)) - value).total_seconds())
    if seconds < 0:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def until(value: datetime | None) -> str:
    """`in 5h`, `expired`, or `never` for a moment in the future."""
    if value is None:
        return "never"
    seconds = int((value - datetime.now(UTC)).total_seconds())
    if seconds <= 0:
        return "expired"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"in {seconds // size}{unit}"
    return f"in {seconds}s"


def percent(value: Any) -> str:
    """A metric as `42%`, or an en dash when the device did not report it."""
    if isinstance(value, int | float):
        return f"{value:.0f}%"
    return "\u2013"  # an en dash: "not reported", quieter than a hyphen


def stamp(value: datetime | None) -> str:
    """An absolute UTC time for tooltips and tables."""
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


@functools.cache
def environment() -> Environment:
    """The one template environment; autoescape is on for every template."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(ago=ago, until=until, percent=percent, stamp=stamp)
    env.globals.update(version=__version__)
    return env


def render(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    """Render a template (page or fragment) with the request and the signed-in user in scope."""
    page = environment().get_template(template)
    body = page.render(request=request, user=getattr(request.state, "web_user", None), **context)
    return HTMLResponse(body, status_code=status_code, headers=SECURITY_HEADERS)
