"""A hostile control plane: a real uvicorn/starlette app on loopback that answers badly on purpose."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.components import free_port

HUGE = 6 * 1024 * 1024
Answer = Callable[[], Response]


def valid_sync(status: str = "unchanged", desired: object = None) -> Response:
    """A sync answer the agent can use (1 s interval hint)."""
    return JSONResponse(
        {
            "status": status,
            "generation": 0,
            "desired": desired,
            "hints": {"sync_interval_seconds": 1},
            "server_time": datetime.now(UTC).isoformat(),
            "added_in_a_later_version": True,
        }
    )


async def _slow() -> Response:
    await asyncio.sleep(4)
    return valid_sync()


async def _drip() -> AsyncIterator[bytes]:
    for _ in range(40):
        yield b" "
        await asyncio.sleep(0.1)


async def _flood() -> AsyncIterator[bytes]:
    chunk = b"[" + b"0," * 32_767
    for _ in range(HUGE // len(chunk) + 1):
        yield chunk


def problem(status: int, detail: str) -> Response:
    """A problem+json answer."""
    body = {"title": "Nope", "status": status, "detail": detail}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


# Each bad answer, and a fragment of the one log line the agent must write about it.
BAD_SYNC_ANSWERS: list[tuple[str, Callable[[], Response | None], str]] = [
    ("not json", lambda: PlainTextResponse("<html>proxy error</html>"), "the answer is not JSON"),
    (
        "wrong shape",
        lambda: JSONResponse({"status": "maybe", "generation": "x"}),
        "the answer has the wrong shape",
    ),
    ("a list", lambda: JSONResponse([1, 2, 3]), "the answer has the wrong shape (body"),
    (
        "html 500",
        lambda: Response("<h1>oops</h1>", status_code=500, media_type="text/html"),
        "HTTP 500 without a problem detail",
    ),
    ("problem 503", lambda: problem(503, "down for maintenance"), "HTTP 503: down for maintenance"),
    (
        "log injection",
        lambda: problem(400, "bad\n\x1b[31mFAKE LOG LINE\r\nmore"),
        "HTTP 400: bad [31mFAKE LOG LINE more",
    ),
    (
        "huge declared",
        lambda: Response(b"0" * HUGE, media_type="application/json"),
        "the answer is too large (6291456 bytes",
    ),
    (
        "huge streamed",
        lambda: StreamingResponse(_flood(), media_type="application/json"),
        "the answer is too large (more than",
    ),
    ("slow", lambda: None, "no complete answer within 1.5 s"),
    (
        "dripping",
        lambda: StreamingResponse(_drip(), media_type="application/json"),
        "no complete answer within 1.5 s",
    ),
    (
        "changed without desired",
        lambda: valid_sync("changed", None),
        "the server said the desired state changed but sent none",
    ),
]


@dataclass
class Hostile:
    """The hostile server: its URL and what it has answered so far."""

    url: str
    served: list[str] = field(default_factory=list)
    script: list[str] = field(default_factory=list)

    def app(self) -> Starlette:
        """Alternate a good sync answer with each bad one; garbage for telemetry and watch."""
        answers = {name: make for name, make, _ in BAD_SYNC_ANSWERS}
        self.script = ["good"]
        for name in answers:
            self.script += [name, "good"]

        async def enroll(request: Request) -> Response:
            body = await request.json()
            return JSONResponse(
                {
                    "device_id": body["device_id"],
                    "credential": "sbd_hostile",
                    "sync_interval_seconds": 1,
                    "rotated": False,
                }
            )

        async def sync(request: Request) -> Response:
            await request.body()
            name = self.script[len(self.served)] if len(self.served) < len(self.script) else "good"
            self.served.append(name)
            if name == "slow":
                return await _slow()
            made = answers[name]() if name in answers else None
            return made or valid_sync()

        async def telemetry(request: Request) -> Response:
            return PlainTextResponse("{{{{ not json")

        async def watch(request: Request) -> Response:
            return JSONResponse({"status": "unchanged", "generation": "zero"})

        return Starlette(
            routes=[
                Route("/api/device/v1/enroll", enroll, methods=["POST"]),
                Route("/api/device/v1/sync", sync, methods=["POST"]),
                Route("/api/device/v1/telemetry", telemetry, methods=["POST"]),
                Route("/api/device/v1/watch", watch, methods=["GET"]),
            ]
        )

    @property
    def finished(self) -> bool:
        """True once every scripted answer went out."""
        return len(self.served) >= len(self.script)


@contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread on a free loopback port; yield its URL."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        started = threading.Event()
        while not server.started and thread.is_alive():
            started.wait(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextmanager
def hostile_server() -> Iterator[Hostile]:
    """The hostile app, served on loopback."""
    hostile = Hostile(url="")
    with serve(hostile.app()) as url:
        hostile.url = url
        yield hostile
