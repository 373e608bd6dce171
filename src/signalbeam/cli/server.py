"""`signalbeam server`: run the control plane, and server-side admin commands."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from signalbeam.cli.output import fail
from signalbeam.domain.durations import parse_duration
from signalbeam.domain.errors import DomainError
from signalbeam.server.app import create_app
from signalbeam.server.bootstrap import Startup, prepare
from signalbeam.server.runtime import build_runtime
from signalbeam.server.services import tenants
from signalbeam.server.settings import ServerSettings

app = typer.Typer(help="Run the SignalBeam control plane.", no_args_is_help=False)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="SIGNALBEAM_DATA_DIR", help="Where state lives [default: ./.signalbeam]"),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="SIGNALBEAM_DATABASE_URL",
        help="e.g. postgresql+asyncpg://user@host/db [default: SQLite in the data dir]",
    ),
]


def _duration(text: str | None) -> timedelta | None:
    return parse_duration(text) if text else None


def _settings(**values: object) -> ServerSettings:
    return ServerSettings(**{k: v for k, v in values.items() if v is not None})  # type: ignore[arg-type]


def _banner(settings: ServerSettings) -> object:
    def show(startup: Startup) -> None:
        url = settings.base_url
        lines = [f"SignalBeam control plane is running at {url}"]
        if startup.admin_token:
            lines += [
                f"First admin: {startup.admin_username} (tenant {tenants.DEFAULT_TENANT})",
                f"Admin API token (shown once, also saved to {startup.token_file}):",
                f"  {startup.admin_token}",
                f"Log in from the CLI: signalbeam login --server {url} --token {startup.admin_token}",
            ]
        else:
            lines.append(f"Admin API token from first start is in {startup.token_file}")
        typer.echo("\n".join(lines), err=False)

    return show


@app.callback(invoke_without_command=True)
def serve(
    ctx: typer.Context,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    host: Annotated[str, typer.Option(envvar="SIGNALBEAM_HOST", help="Listen address; loopback unless you say otherwise")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="SIGNALBEAM_PORT")] = 8420,
    public_url: Annotated[str | None, typer.Option(envvar="SIGNALBEAM_PUBLIC_URL", help="URL devices use to reach this server")] = None,
    sync_interval: Annotated[str | None, typer.Option(help="How often agents sync, e.g. 15s")] = None,
    offline_after_missed: Annotated[int | None, typer.Option(help="Missed syncs before a device is offline")] = None,
    mdns: Annotated[bool, typer.Option("--mdns/--no-mdns", help="Advertise on mDNS so agents find this server")] = True,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
) -> None:
    """Start the control plane (migrates the database and creates the first admin on first start)."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        settings = _settings(
            data_dir=data_dir,
            database_url=database_url,
            host=host,
            port=port,
            public_url=public_url,
            sync_interval=_duration(sync_interval),
            offline_after_missed=offline_after_missed,
            mdns=mdns,
        )
    except DomainError as err:
        fail(err.detail)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    application = create_app(settings, on_ready=_banner(settings))  # type: ignore[arg-type]
    config = uvicorn.Config(
        application,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        access_log=False,
        # Long polls and event streams would otherwise hold a shutdown open indefinitely.
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()


@app.command("create-tenant")
def create_tenant(
    slug: Annotated[str, typer.Argument(help="Short lowercase name, e.g. acme")],
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
    admin: Annotated[str, typer.Option(help="Username of the tenant's first admin")] = "admin",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create another tenant and print its first admin's API token (run on the server host)."""
    settings = _settings(data_dir=data_dir, database_url=database_url)

    async def run() -> tenants.NewTenant:
        runtime = build_runtime(settings)
        try:
            await prepare(runtime)
            return await tenants.create(runtime, slug, name or slug, admin)
        finally:
            await runtime.engine.dispose()

    try:
        created = asyncio.run(run())
    except DomainError as err:
        fail(err.detail)
    typer.echo(f"Tenant {slug} created. Admin {admin} API token (shown once):\n  {created.admin_token}")
