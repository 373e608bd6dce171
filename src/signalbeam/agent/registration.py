"""`signalbeam-agent register`: enroll with a token and keep the identity the server gives."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from signalbeam.agent.client import DeviceClient
from signalbeam.agent.collectors import Collector
from signalbeam.agent.config import AgentSettings
from signalbeam.agent.discovery import find_server
from signalbeam.agent.identity import (
    Identity,
    IdentityError,
    derive_device_id,
    ensure_state_dir,
    load_identity,
    save_identity,
)
from signalbeam.agent.outbox import OUTBOX_FILE
from signalbeam.agent.state import DESIRED_FILE, STATUS_FILE
from signalbeam.agent.trust import pin
from signalbeam.agent.wire import EnrollRequest, checked, where


class RegistrationError(Exception):
    """Registration cannot go ahead; the message says what to fix."""


@dataclass(frozen=True)
class Registration:
    """What `register` asks for."""

    token: str
    device_id: str | None = None
    name: str | None = None
    labels: tuple[str, ...] = ()
    mdns_timeout: float = 5.0
    mdns_name: str | None = None


@dataclass(frozen=True)
class Registered:
    """The outcome: the identity stored, where, and whether an old credential was replaced."""

    identity: Identity
    path: Path
    rotated: bool


def parse_labels(pairs: tuple[str, ...]) -> dict[str, str]:
    """`k=v` pairs as a dict; a pair without `=` is an error naming it."""
    labels: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise RegistrationError(f'label "{pair}" must look like key=value')
        labels[key.strip()] = value.strip()
    return labels


def _request(registration: Registration, device_id: str, collector: Collector) -> EnrollRequest:
    request = EnrollRequest(
        token=registration.token,
        device_id=device_id,
        name=registration.name,
        facts=collector.read_facts(),
        labels=parse_labels(registration.labels),
    )
    try:
        return checked(request)
    except msgspec.ValidationError as err:
        path, problem = where(err)
        raise RegistrationError(f"{path or 'request'}: {problem}") from err


def _forget_previous(state_dir: Path, identity: Identity) -> None:
    # Queued telemetry and desired state belong to the device and server they came from.
    try:
        previous = load_identity(state_dir)
    except IdentityError:
        previous = None
    if previous is None or (previous.server, previous.device_id) != (
        identity.server,
        identity.device_id,
    ):
        for name in (OUTBOX_FILE, OUTBOX_FILE + "-wal", OUTBOX_FILE + "-shm", DESIRED_FILE):
            with contextlib.suppress(FileNotFoundError):
                (state_dir / name).unlink()
    with contextlib.suppress(FileNotFoundError):
        (state_dir / STATUS_FILE).unlink()


async def register(settings: AgentSettings, registration: Registration) -> Registered:
    """Find the server (flag, env, file or mDNS), enroll, and store the identity (0600)."""
    state_dir = ensure_state_dir(settings.state_dir)
    server = settings.server or await find_server(
        settings.mdns_interface or None, registration.mdns_timeout, registration.mdns_name
    )
    device_id = registration.device_id or derive_device_id(state_dir)
    request = _request(registration, device_id, await asyncio.to_thread(Collector))
    client = DeviceClient(server, request_seconds=settings.request_timeout)
    try:
        response = await client.enroll(request)
    finally:
        await client.aclose()
    identity = Identity(
        server=server,
        device_id=response.device_id,
        credential=response.credential,
        server_keys=response.server_keys,
        name=registration.name,
        enrolled_at=datetime.now(UTC),
    )
    _forget_previous(state_dir, identity)
    path = save_identity(state_dir, identity)
    pin(state_dir, response.trust)
    return Registered(identity=identity, path=path, rotated=response.rotated)
