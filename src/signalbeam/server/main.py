"""Running the control plane process: uvicorn, the start-up banner, a prompt shutdown."""

from __future__ import annotations

import asyncio
import gc
import socket
from types import FrameType

import typer
import uvicorn

from signalbeam.protocol.sessions import MAX_FRAME_BYTES
from signalbeam.server.app import create_app
from signalbeam.server.bootstrap import Startup, prepare
from signalbeam.server.observability import listener as metrics_listener
from signalbeam.server.observability import logs
from signalbeam.server.runtime import Runtime, build_runtime
from signalbeam.server.secrets_box import SecretsKeyError
from signalbeam.server.secrets_check import verify_secrets_key
from signalbeam.server.services import tenants
from signalbeam.server.settings import ServerSettings

SESSION_GOODBYE_SECONDS = 2.0


def banner(settings: ServerSettings, startup: Startup) -> str:
    """What `signalbeam server` prints once it is ready."""
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
        lines.append(f"The first admin's API token is in {startup.token_file}")
    if settings.metrics_listen_address is not None:
        lines.append(
            f"Prometheus metrics (no token): http://{settings.metrics_listen_address}/metrics"
        )
    return "\n".join(lines)


# Young-generation size before a collection (CPython's default is 700).
GC_YOUNG_THRESHOLD = 20_000


def settle_heap() -> None:
    """Keep the garbage collector's full collections off the request path.

    Measured at 1,000 syncs/s with 10,000 devices: CPython's default thresholds ran a full
    collection about once a second, each stopping the event loop for 120-230 ms, which was
    the whole latency tail. Objects alive for a request's few milliseconds were promoted
    to the oldest generation because young collections ran every 700 allocations. So:
    freeze what start-up built (modules, app, metadata), which later collections then skip,
    and let the young generation grow large enough for request-lived objects to die in it.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)


def on_ready(settings: ServerSettings, startup: Startup) -> None:
    """Print the banner and settle the heap once the server is ready to serve."""
    typer.echo(banner(settings, startup))
    settle_heap()


class ControlPlaneServer(uvicorn.Server):
    """uvicorn, plus: on SIGTERM/SIGINT, end event streams and long polls at once.

    uvicorn waits for open connections before the app's shutdown runs, and streams
    never finish by themselves, so they are told to finish when the signal arrives.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        runtime: Runtime,
        beside: tuple[uvicorn.Server, socket.socket] | None = None,
    ) -> None:
        super().__init__(config)
        self.runtime = runtime
        # Another server (the metrics listener) with its bound socket, run and stopped with this.
        self.beside = beside

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        if self.beside is None:
            await super().serve(sockets)
            return
        other, sock = self.beside
        task = asyncio.create_task(other.serve(sockets=[sock]))
        try:
            await super().serve(sockets)
        finally:
            other.should_exit = True
            await task

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            loop.call_soon_threadsafe(self.runtime.begin_shutdown)
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn closes every WebSocket at once; tell each session's operator why first.
        await self.runtime.broker.close_and_wait(SESSION_GOODBYE_SECONDS)
        await super().shutdown(sockets)


def run(settings: ServerSettings, log_level: str) -> None:
    """Serve until stopped."""
    logs.configure(settings.log_format, log_level)
    try:
        application = create_app(settings, on_ready=lambda startup: on_ready(settings, startup))
        runtime: Runtime = application.state.runtime
        asyncio.run(verify_secrets_key(settings.resolved_database_url, runtime.secrets))
    except SecretsKeyError as err:
        # One line naming the file: a traceback would bury what to do.
        typer.echo(f"error: {err.message}", err=True)
        raise typer.Exit(1) from None
    config = uvicorn.Config(
        application,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        log_config=logs.uvicorn_log_config(settings.log_format),
        access_log=False,
        timeout_graceful_shutdown=10,
        # Session streams (protocol/sessions.py): frames are bounded, so is what one may hold.
        ws="websockets-sansio",
        ws_max_size=MAX_FRAME_BYTES,
    )
    ControlPlaneServer(config, runtime, _metrics_listener(settings, runtime)).run()


def _metrics_listener(
    settings: ServerSettings, runtime: Runtime
) -> tuple[uvicorn.Server, socket.socket] | None:
    address = settings.metrics_listen_address
    if address is None:
        return None
    try:
        sock = metrics_listener.bind(address.host, address.port)
    except OSError as err:
        typer.echo(
            f"error: cannot listen for metrics on {address}: {err.strerror or err};"
            " choose another --metrics-listen",
            err=True,
        )
        raise typer.Exit(1) from err
    return metrics_listener.listener(runtime.metrics), sock


def create_tenant(settings: ServerSettings, slug: str, name: str, admin: str) -> tenants.NewTenant:
    """Create a tenant directly in the database (run on the server host)."""

    async def go() -> tenants.NewTenant:
        runtime = build_runtime(settings)
        try:
            await prepare(runtime)
            return await tenants.create(runtime, slug, name, admin)
        finally:
            await runtime.engine.dispose()

    return asyncio.run(go())
