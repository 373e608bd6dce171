"""A second, token-free listener serving only `GET /metrics`, for a loopback Prometheus.

It runs in the control plane's process and event loop (`serve` beside the main uvicorn),
and shows every tenant: whoever can reach it is on the server's own host (or was let in
by `--metrics-allow-remote`).
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Generator

import uvicorn
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4 as TEXT_FORMAT
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from signalbeam.server.observability.metrics import Metrics

log = logging.getLogger(__name__)


class MetricsApp:
    """The listener's ASGI app."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        response: Response
        if scope["path"] != "/metrics" or scope["method"] not in ("GET", "HEAD"):
            response = PlainTextResponse("only GET /metrics is served here\n", status_code=404)
        else:
            try:
                body = await self.metrics.scrape(None)
            except Exception as err:  # the database is down: say so, Prometheus marks it down
                log.warning("metrics scrape failed: %s", err)
                response = PlainTextResponse(f"metrics unavailable: {err}\n", status_code=503)
            else:
                response = Response(body, media_type=TEXT_FORMAT)
        await response(scope, receive, send)


class MetricsListener(uvicorn.Server):
    """uvicorn on an already bound socket, leaving signals to the main server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The main server handles SIGTERM/SIGINT and stops this one (`should_exit`).
        yield


def bind(host: str, port: int) -> socket.socket:
    """A listening socket for the metrics listener (raises OSError when the address is taken)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def listener(metrics: Metrics) -> MetricsListener:
    """The metrics listener's server (serve it with `serve(sockets=[bind(...)])`)."""
    # No log settings of its own: uvicorn would apply them to the main server's loggers too.
    config = uvicorn.Config(
        MetricsApp(metrics), lifespan="off", access_log=False, log_config=None, log_level=None
    )
    return MetricsListener(config)
