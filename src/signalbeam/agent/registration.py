"""`signalbeam-agent register`: enroll with a token and keep the identity the server gives."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from signalbeam.agent.client import DeviceClient, Rejected, ServerUnavailable
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
from signalbeam.agent.wire import EnrollRequest, EnrollResponse, checked, where

# Kept until the identity is stored: a rerun of `register` after a lost answer sends the same
# enrollment id, which the server takes as the same enrollment (no second use of the token).
ATTEMPT_FILE = "enrollment-attempt"
# Tries of one `register` when no answer comes (refused, dropped, timed out): 1 + 2 + 4 s.
ENROLL_TRIES = 4


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


def _request(
    registration: Registration, device_id: str, collector: Collector, attempt: str
) -> EnrollRequest:
    request = EnrollRequest(
        token=registration.token,
        device_id=device_id,
        name=registration.name,
        facts=collector.read_facts(),
        labels=parse_labels(registration.labels),
        enrollment_id=attempt,
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
    attempt = enrollment_attempt(state_dir)
    request = _request(registration, device_id, await asyncio.to_thread(Collector), attempt)
    client = DeviceClient(server, request_seconds=settings.request_timeout)
    try:
        response = await _enroll(client, request)
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
    (state_dir / ATTEMPT_FILE).unlink(missing_ok=True)
    return Registered(identity=identity, path=path, rotated=response.rotated)


def enrollment_attempt(state_dir: Path) -> str:
    """This state dir's enrollment id: the one a lost answer left behind, else a new one."""
    path = state_dir / ATTEMPT_FILE
    with contextlib.suppress(OSError):
        kept = path.read_text().strip()
        if 16 <= len(kept) <= 64:
            return kept
    attempt = secrets.token_urlsafe(24)
    # Written before it is sent: whatever happens to the answer, a rerun finds it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(attempt + "\n")
    return attempt


async def _enroll(client: DeviceClient, request: EnrollRequest) -> EnrollResponse:
    for attempt in range(ENROLL_TRIES):
        try:
            return await client.enroll(request)
        except ServerUnavailable:
            if attempt == ENROLL_TRIES - 1:
                raise
        except Rejected as err:
            if err.status != 422 or "enrollment_id" not in err.detail:
                raise
            # A server older than enrollment ids: enroll the old way (no retry protection).
            request = msgspec.structs.replace(request, enrollment_id=None)
            continue
        await asyncio.sleep(2**attempt)
    raise AssertionError("unreachable")
