"""Attach the dashboard (pages, live stream, static assets) to the control plane app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from signalbeam.server.web import (
    activity,
    alert_rules,
    alerts,
    auth,
    bundles,
    device_config,
    device_sessions,
    devices,
    enrollment,
    fleet,
    fleet_rollouts,
    group_config,
    groups,
    live,
    notifiers,
    tenant_config,
    users,
    webhooks,
)

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    """Add every dashboard route and serve the vendored assets under /static."""
    modules = (
        auth,
        fleet,
        devices,
        device_sessions,
        device_config,
        enrollment,
        groups,
        group_config,
        bundles,
        fleet_rollouts,
        activity,
        alerts,
        alert_rules,
        notifiers,
        webhooks,
        tenant_config,
        users,
        live,
    )
    for module in modules:
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
