"""create_app(settings) -> the ASGI app; its lifespan prepares the database and runs workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Literal

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text

from signalbeam import __version__
from signalbeam.server.api import openapi_document, problem_responses, problems
from signalbeam.server.api.deps import RuntimeDep
from signalbeam.server.api.device.v1.artifacts import router as device_artifacts_router
from signalbeam.server.api.device.v1.fast_paths import ControlPlaneApp
from signalbeam.server.api.device.v1.routes import router as device_router
from signalbeam.server.api.device.v1.sessions import router as device_sessions_router
from signalbeam.server.api.device.v1.sync_fast_path import SYNC_PATH, SyncFastPath
from signalbeam.server.api.device.v1.watch_fast_path import WATCH_PATH, WatchFastPath
from signalbeam.server.api.limits import BodyLimitMiddleware
from signalbeam.server.api.management.v1 import (
    actions,
    alerts,
    artifacts,
    bundles,
    config,
    devices,
    enrollment,
    events,
    groups,
    notifiers,
    remote_access,
    rollouts,
    sessions,
    signing,
    users,
    webhooks,
)
from signalbeam.server.bootstrap import Startup, prepare
from signalbeam.server.discovery import Advertiser
from signalbeam.server.observability import routes as metrics_routes
from signalbeam.server.observability import tracing as tracing_setup
from signalbeam.server.observability.request_context import RequestContext
from signalbeam.server.observability.request_meter import RequestMeter
from signalbeam.server.runtime import Runtime, build_runtime
from signalbeam.server.services.metric_watch import MetricWatch
from signalbeam.server.settings import ServerSettings
from signalbeam.server.web import mount as web
from signalbeam.server.workers.alerts import run_alerts
from signalbeam.server.workers.deliveries import run_deliveries
from signalbeam.server.workers.presence import run_sweeper
from signalbeam.server.workers.retention import run_retention
from signalbeam.server.workers.rollout_engine import run_rollout_engine

log = logging.getLogger(__name__)
OnReady = Callable[[Startup], None]


def _management_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1", responses=problem_responses.API_PROBLEMS)
    for module in (
        users,
        enrollment,
        devices,
        groups,
        events,
        bundles,
        artifacts,
        rollouts,
        signing,
        sessions,
        remote_access,
        actions,
        alerts,
        notifiers,
        webhooks,
        config,
    ):
        router.include_router(module.router)
    return router


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    detail: str | None = Field(default=None, description="why not, when unavailable")


READY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": Readiness, "description": "the database answers"},
    503: {"model": Readiness, "description": "the database does not answer; `detail` says why"},
}


def _health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok", "version": __version__}

    @router.get("/readyz", responses=READY_RESPONSES)
    async def readyz(runtime: RuntimeDep) -> JSONResponse:
        """The database answers."""
        try:
            async with runtime.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as err:  # any database failure means "not ready", with the reason
            return JSONResponse(
                {"status": "unavailable", "detail": f"database unreachable: {err}"}, status_code=503
            )
        return JSONResponse({"status": "ready"})

    return router


def _start_workers(runtime: Runtime, advertiser: Advertiser | None) -> list[asyncio.Task[None]]:
    settings = runtime.settings
    metrics = MetricWatch(runtime)
    runtime.ingestor.observers.append(metrics.record)
    starters: list[Coroutine[Any, Any, None]] = [
        run_sweeper(runtime, runtime.ingestor, settings.sweep_interval),
        run_retention(runtime),
        run_rollout_engine(runtime),
        run_alerts(runtime),
        run_deliveries(runtime),
        metrics.run(),
    ]
    if advertiser is not None:
        # Probing the network takes a second or two; the server need not wait for it.
        starters.append(advertiser.start())
    return [asyncio.create_task(coro) for coro in starters]


def create_app(settings: ServerSettings, on_ready: OnReady | None = None) -> FastAPI:
    """Build the control plane app; nothing touches the database until the lifespan starts."""
    runtime = build_runtime(settings)
    tracing = tracing_setup.install(settings, runtime.engine)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        startup = await prepare(runtime)
        app.state.startup = startup
        ingest_task = asyncio.create_task(runtime.ingestor.run())
        advertiser = Advertiser(settings) if settings.mdns else None
        workers = _start_workers(runtime, advertiser)
        if on_ready is not None:
            on_ready(startup)
        try:
            yield
        finally:
            # Device actions record the answers they have (their sessions have ended).
            await runtime.action_runs.close()
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            if advertiser is not None:
                await advertiser.stop()
            # Commit every sync already acknowledged or queued before the database closes.
            await runtime.ingestor.stop()
            await ingest_task
            runtime.bus.close()
            await runtime.engine.dispose()
            if tracing is not None:
                # Send the last batch of spans (the exporter blocks on HTTP).
                await asyncio.to_thread(tracing.shutdown)

    app = ControlPlaneApp(
        title="SignalBeam",
        version=__version__,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
        telemetry=tracing.telemetry() if tracing else tracing_setup.TELEMETRY_OFF,
    )
    app.state.runtime = runtime
    meters = runtime.metrics.meters
    app.fast_paths = {
        ("POST", SYNC_PATH): RequestContext(
            RequestMeter(SyncFastPath(runtime), meters, route=SYNC_PATH), route=SYNC_PATH
        ),
        ("GET", WATCH_PATH): RequestContext(
            RequestMeter(WatchFastPath(runtime), meters, route=WATCH_PATH), route=WATCH_PATH
        ),
    }
    problems.install(app)
    openapi_document.install(app)
    app.include_router(_health_router())
    app.include_router(device_router, responses=problem_responses.API_PROBLEMS)
    app.include_router(device_artifacts_router, responses=problem_responses.API_PROBLEMS)
    app.include_router(device_sessions_router)
    app.include_router(_management_router())
    app.include_router(metrics_routes.router)
    web.install(app)
    # Artifact uploads stream to disk and enforce their own, larger limit.
    app.add_middleware(
        BodyLimitMiddleware, limit=settings.max_body_bytes, exempt_prefixes=("/api/v1/artifacts/",)
    )
    # Outside the routes and the body limit, so it times what the client waits for and sees
    # the status it gets.
    app.add_middleware(RequestMeter, meters=meters)
    # Around that, so the request id is in every log line and the response, errors included.
    app.add_middleware(RequestContext)
    return app
