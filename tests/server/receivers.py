"""Real receivers for notifications: an HTTP server that records what it is sent (and can be
told to fail), and an SMTP server (aiosmtpd) that keeps every message."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from aiosmtpd.controller import Controller

from tests.components import free_port


@dataclass
class Received:
    """One request the HTTP receiver took."""

    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)

    def signed_by(self, key: str) -> bool:
        """Whether X-SignalBeam-Signature is the HMAC-SHA256 of "t.body" under `key`."""
        parts = dict(p.split("=", 1) for p in self.headers["x-signalbeam-signature"].split(","))
        expected = hmac.new(key.encode(), f"{parts['t']}.".encode() + self.body, hashlib.sha256)
        return hmac.compare_digest(parts["v1"], expected.hexdigest())


@dataclass
class HttpReceiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    status: int = 200  # what it answers; set 503 to make deliveries fail


@contextmanager
def http_receiver() -> Iterator[HttpReceiver]:
    """An HTTP server on loopback recording every POST."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    receiver = HttpReceiver(url=f"http://127.0.0.1:{server.server_address[1]}/hook")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            receiver.requests.append(Received(headers, body))
            self.send_response(receiver.status)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server.RequestHandlerClass = Handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Mailbox:
    port: int
    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) on loopback keeping every message it accepts."""
    mailbox = Mailbox(port=free_port())
    controller = Controller(mailbox, hostname="127.0.0.1", port=mailbox.port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()
