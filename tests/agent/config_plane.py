"""A stand-in control plane for config tests: signs bundles and config layers with a test key.

The real server's config side is written separately; these tests hold the agent to the
wire contract (protocol/config_v1.py) on their own. It is a real HTTP server on loopback
speaking device API v1 (enroll, sync, telemetry; no watch, so the agent syncs every
second), and the agent under test is a real process that pins this plane's key at
enrollment exactly as it pins a real server's.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from signalbeam.protocol.bundle_v1 import parse_bundle
from signalbeam.protocol.config_v1 import Layer, merge, secret_hash
from signalbeam.protocol.signing import KeyPair, Trust, TrustedKey, manifest_payload
from tests.agent.hostile import serve


def layer(
    scope: str,
    name: str,
    version: int,
    values: Mapping[str, Any],
    secrets: Mapping[str, str] | None = None,
    priority: int = 0,
) -> tuple[Layer, dict[str, str]]:
    """A layer version and its secrets in clear."""
    clear = dict(secrets or {})
    hashes = {key: secret_hash(value) for key, value in clear.items()}
    return Layer(scope, name, version, dict(values), hashes, priority), clear  # type: ignore[arg-type]


@dataclass
class ConfigPlane:
    """The plane's key, the desired state it hands out, and what the device reported."""

    key: KeyPair = field(default_factory=KeyPair.generate)
    url: str = ""
    generation: int = 0
    spec: dict[str, Any] = field(default_factory=dict)
    reports: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def trust(self) -> dict[str, Any]:
        trust = Trust(1, (TrustedKey(self.key.key_id, "server", self.key.public_key),))
        return {
            "statement": trust.statement(),
            "signatures": [self.key.sign(trust.payload()).to_dict()],
        }

    def document(
        self, bundle: dict[str, Any], layers: list[tuple[Layer, dict[str, str]]] | None = None
    ) -> dict[str, Any]:
        """A signed desired-state document for `bundle`, with `layers` as its config."""
        canonical = parse_bundle(bundle).canonical()
        document: dict[str, Any] = {
            "kind": "bundle",
            "digest": parse_bundle(bundle).digest(),
            "bundle": canonical,
            "signatures": [self.key.sign(manifest_payload(canonical)).to_dict()],
            "trust": self.trust(),
        }
        if layers:
            document["config"] = self.section(layers)
        return document

    def section(self, layers: list[tuple[Layer, dict[str, str]]]) -> dict[str, Any]:
        """The config section of `layers`, each signed by the plane's key."""
        merged, hashes = merge(item for item, _ in layers)
        secrets = {k: v for _, clear in layers for k, v in clear.items() if k in merged.secrets}
        return {
            "layers": [
                item.to_wire([self.key.sign(item.payload()).to_dict()]) for item, _ in layers
            ],
            "secrets": secrets,
            "digest": merged.digest(hashes),
        }

    def give(self, document: dict[str, Any]) -> int:
        """Make `document` the desired state (a new generation); the generation."""
        with self.lock:
            self.generation += 1
            self.spec = copy.deepcopy(document)
            return self.generation

    def last(self) -> dict[str, Any]:
        """The last report the device sent ({} before the first)."""
        with self.lock:
            return self.reports[-1] if self.reports else {}

    def app(self) -> Starlette:
        async def enroll(request: Request) -> Response:
            body = await request.json()
            return JSONResponse(
                {
                    "device_id": body["device_id"],
                    "credential": "sbd_config_plane",
                    "server_keys": [self.key.public_key],
                    "sync_interval_seconds": 1,
                    "rotated": False,
                    "trust": self.trust(),
                }
            )

        async def sync(request: Request) -> Response:
            body = await request.json()
            with self.lock:
                self.reports.append(body.get("reported") or {})
                generation, spec = self.generation, self.spec
            changed = body.get("known_generation", -1) != generation
            return JSONResponse(
                {
                    "status": "changed" if changed else "unchanged",
                    "generation": generation,
                    "desired": {"generation": generation, "spec": spec} if changed else None,
                    "hints": {"sync_interval_seconds": 1},
                    "server_time": datetime.now(UTC).isoformat(),
                }
            )

        async def telemetry(request: Request) -> Response:
            body = await request.json()
            samples = [s["seq"] for s in body.get("samples", [])] or [0]
            events = [e["seq"] for e in body.get("events", [])] or [0]
            return JSONResponse({"samples_through": max(samples), "events_through": max(events)})

        return Starlette(
            routes=[
                Route("/api/device/v1/enroll", enroll, methods=["POST"]),
                Route("/api/device/v1/sync", sync, methods=["POST"]),
                Route("/api/device/v1/telemetry", telemetry, methods=["POST"]),
            ]
        )


@contextmanager
def config_plane() -> Iterator[ConfigPlane]:
    """A `ConfigPlane` served on loopback."""
    plane = ConfigPlane()
    with serve(plane.app()) as url:
        plane.url = url
        yield plane
