"""`signalbeam server`: run the control plane, and server-side admin commands."""

from __future__ import annotations

import inspect
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from signalbeam.cli.output import fail
from signalbeam.domain.durations import parse_duration
from signalbeam.domain.errors import DomainError
from signalbeam.server.settings import ServerSettings

# The server stack (uvicorn, SQLAlchemy, FastAPI) is imported inside the commands that
# need it, so every other `signalbeam` command starts without paying for it.

app = typer.Typer(help="Run the SignalBeam control plane.", no_args_is_help=False)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="SIGNALBEAM_DATA_DIR",
        help="Where state lives [default: ./.signalbeam]",
    ),
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
    try:
        return ServerSettings(**{k: v for k, v in values.items() if v is not None})  # type: ignore[arg-type]
    except ValidationError as err:
        # Settings come from flags and SIGNALBEAM_* variables alike: name both ways to fix it.
        first = err.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "settings"
        problem = first["msg"].removeprefix("Value error, ")
        flag = (
            f"--{name.replace('_', '-')} or " if name in inspect.signature(serve).parameters else ""
        )
        fail(f"{name}: {problem} (set it with {flag}SIGNALBEAM_{name.upper()})")


@app.callback(invoke_without_command=True)
def serve(
    ctx: typer.Context,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    host: Annotated[
        str,
        typer.Option(
            envvar="SIGNALBEAM_HOST", help="Listen address; loopback unless you say otherwise"
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="SIGNALBEAM_PORT")] = 8420,
    public_url: Annotated[
        str | None,
        typer.Option(envvar="SIGNALBEAM_PUBLIC_URL", help="URL devices use to reach this server"),
    ] = None,
    sync_interval: Annotated[
        str | None, typer.Option(help="How often agents sync, e.g. 15s")
    ] = None,
    offline_after_missed: Annotated[
        int | None, typer.Option(help="Missed syncs before a device is offline")
    ] = None,
    mdns: Annotated[
        bool, typer.Option("--mdns/--no-mdns", help="Advertise on mDNS so agents find this server")
    ] = True,
    metrics_listen: Annotated[
        str | None,
        typer.Option(
            envvar="SIGNALBEAM_METRICS_LISTEN",
            help="Also serve Prometheus GET /metrics without a token on HOST:PORT (loopback)",
        ),
    ] = None,
    metrics_allow_remote: Annotated[
        bool,
        typer.Option(help="Let --metrics-listen bind an address other machines can reach"),
    ] = False,
    otlp_endpoint: Annotated[
        str | None,
        typer.Option(
            # The standard OpenTelemetry variable too, as OTel-aware deployments set it.
            envvar=["SIGNALBEAM_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"],
            help="Send traces to this OpenTelemetry collector (OTLP/HTTP), e.g. http://127.0.0.1:4318",
        ),
    ] = None,
    log_format: Annotated[
        str | None,
        typer.Option(envvar="SIGNALBEAM_LOG_FORMAT", help="text, or json: one object per line"),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
    secrets_key_file: Annotated[
        Path | None,
        typer.Option(
            envvar="SIGNALBEAM_SECRETS_KEY_FILE",
            help="The key that encrypts config secrets [default: secrets.key in the data dir]",
        ),
    ] = None,
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
            metrics_listen=metrics_listen,
            metrics_allow_remote=metrics_allow_remote or None,
            otlp_endpoint=otlp_endpoint,
            log_format=log_format,
            secrets_key_file=secrets_key_file,
        )
    except DomainError as err:
        fail(err.detail)
    from signalbeam.server import main as server_main

    server_main.run(settings, log_level)


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

    try:
        from signalbeam.server import main as server_main

        created = server_main.create_tenant(settings, slug, name or slug, admin)
    except DomainError as err:
        fail(err.detail)
    typer.echo(
        f"Tenant {slug} created. Admin {admin} API token (shown once):\n  {created.admin_token}"
    )
