"""Enrollment tokens and device enrollment: how a device joins a tenant."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from signalbeam.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from signalbeam.domain.model import EventType, GroupKind, Presence, Role
from signalbeam.domain.selectors import validate_label_key, validate_label_value
from signalbeam.protocol.device_v1 import EnrollRequest, EnrollResponse
from signalbeam.server.db.models import Device, EnrollmentToken
from signalbeam.server.repositories import credentials
from signalbeam.server.runtime import Runtime
from signalbeam.server.security import DEVICE_CREDENTIAL_PREFIX, ENROLLMENT_TOKEN_PREFIX, new_secret
from signalbeam.server.services.context import Actor, UnitOfWork
from signalbeam.server.services.signing import current_trust


@dataclass(frozen=True)
class NewEnrollmentToken:
    """A created enrollment token; `secret` is shown once and never stored."""

    token: EnrollmentToken
    secret: str


@dataclass(frozen=True)
class TokenSpec:
    """What an operator asks for when creating an enrollment token."""

    description: str = ""
    expires_in: timedelta | None = timedelta(hours=24)
    max_uses: int | None = None
    labels: dict[str, str] | None = None
    group: str | None = None


def validate_labels(labels: dict[str, str]) -> None:
    """Raise a field error for the first label key or value that breaks the rules."""
    for key, value in labels.items():
        validate_label_key(key)
        validate_label_value(value)


async def create_token(runtime: Runtime, actor: Actor, spec: TokenSpec) -> NewEnrollmentToken:
    """Create an enrollment token that devices use to join the actor's tenant."""
    actor.require(Role.OPERATOR)
    validate_labels(spec.labels or {})
    if spec.max_uses is not None and spec.max_uses < 1:
        raise InvalidInput(
            "max_uses must be at least 1 (or left out for unlimited)", field="max_uses"
        )
    if spec.expires_in is not None and spec.expires_in <= timedelta(0):
        raise InvalidInput("expires_in must be a positive duration such as 24h", field="expires_in")
    async with runtime.unit_of_work(actor) as uow:
        if spec.group is not None:
            group = await uow.groups.get(spec.group)
            if group is None:
                raise NotFound(
                    f'no group "{spec.group}"; create it with `signalbeam groups create '
                    f"{spec.group}`, or leave group out",
                    field="group",
                )
            if group.kind != GroupKind.STATIC:
                raise Conflict(
                    f'group "{spec.group}" is dynamic (its selector picks its members); name a '
                    "static group, or give the token labels the selector matches",
                    field="group",
                )
        secret = new_secret(ENROLLMENT_TOKEN_PREFIX)
        now = datetime.now(UTC)
        token = await uow.enrollment_tokens.add(
            EnrollmentToken(
                token_hash=runtime.hasher.hash(secret),
                description=spec.description,
                labels=spec.labels or {},
                group_name=spec.group,
                max_uses=spec.max_uses,
                uses=0,
                expires_at=now + spec.expires_in if spec.expires_in else None,
                created_at=now,
                created_by=str(actor),
            )
        )
        uow.record(EventType.ENROLLMENT_TOKEN_CREATED, f"enrollment token {token.id} created")
        await uow.commit()
    return NewEnrollmentToken(token=token, secret=secret)


async def list_tokens(runtime: Runtime, actor: Actor) -> list[EnrollmentToken]:
    """The tenant's enrollment tokens, newest first."""
    async with runtime.unit_of_work(actor) as uow:
        return await uow.enrollment_tokens.all()


async def revoke_token(runtime: Runtime, actor: Actor, token_id: int) -> EnrollmentToken:
    """Revoke an enrollment token; devices already enrolled keep working."""
    actor.require(Role.OPERATOR)
    async with runtime.unit_of_work(actor) as uow:
        token = await uow.enrollment_tokens.get(token_id)
        if token is None:
            raise NotFound(f"no enrollment token {token_id}", field="token_id")
        token.revoked_at = token.revoked_at or datetime.now(UTC)
        uow.record(EventType.ENROLLMENT_TOKEN_REVOKED, f"enrollment token {token_id} revoked")
        await uow.commit()
    return token


def _check_usable(
    token: EnrollmentToken | None, now: datetime, *, maybe_retry: bool = False
) -> EnrollmentToken:
    if token is None:
        raise Unauthenticated(
            "enrollment token not recognised; create one with `signalbeam tokens create`"
        )
    if token.revoked_at is not None:
        raise Forbidden(
            "enrollment token was revoked; create a new one with `signalbeam tokens create`"
        )
    if token.expires_at is not None and token.expires_at <= now:
        raise Forbidden(
            "enrollment token has expired; create a new one with `signalbeam tokens create`"
        )
    # A retried enrollment does not use the token again; `_consume` judges the others.
    if token.max_uses is not None and token.uses >= token.max_uses and not maybe_retry:
        raise Forbidden(_used_up(token))
    return token


def _used_up(token: EnrollmentToken) -> str:
    return (
        f"enrollment token is used up ({token.uses} of {token.max_uses} uses); "
        "create a new one with `signalbeam tokens create --max-uses N`"
    )


async def _consume(uow: UnitOfWork, token: EnrollmentToken) -> None:
    # A conditional UPDATE keeps two devices racing for the last use from both winning.
    result = await uow.session.execute(
        update(EnrollmentToken)
        .where(EnrollmentToken.id == token.id)
        .where(
            (EnrollmentToken.max_uses.is_(None)) | (EnrollmentToken.uses < EnrollmentToken.max_uses)
        )
        .values(uses=EnrollmentToken.uses + 1)
    )
    if getattr(result, "rowcount", 1) != 1:
        raise Forbidden(_used_up(token))


LOCKED_RETRIES = 6


async def enroll(runtime: Runtime, request: EnrollRequest) -> EnrollResponse:
    """Register a device, or rotate its credential when its device_id is already known.

    A whole fleet enrolling at once can outlast SQLite's busy timeout (one writer at a time);
    the transaction rolled back entirely, so trying again after a short random pause is safe.
    """
    for attempt in range(LOCKED_RETRIES):
        try:
            return await _enroll(runtime, request)
        except OperationalError as err:
            if "database is locked" not in str(err) or attempt == LOCKED_RETRIES - 1:
                raise
            await asyncio.sleep(random.uniform(0.05, 0.25) * 2**attempt)
    raise AssertionError("unreachable")


async def _enroll(runtime: Runtime, request: EnrollRequest) -> EnrollResponse:
    now = datetime.now(UTC)
    async with runtime.sessions() as session:
        token = _check_usable(
            await credentials.enrollment_token(session, runtime.hasher.hash(request.token)),
            now,
            maybe_retry=request.enrollment_id is not None,
        )
    validate_labels(request.labels)
    actor = Actor(token.tenant_id, "device", request.device_id)
    credential = new_secret(DEVICE_CREDENTIAL_PREFIX)
    # Read (or, the first time, create) the trust set outside the enrollment's write
    # transaction: SQLite has one writer, and a burst of enrollments must not queue on it.
    trust = await current_trust(runtime, actor)
    attempt = runtime.hasher.hash(request.enrollment_id) if request.enrollment_id else None
    async with runtime.unit_of_work(actor) as uow:
        device = await uow.devices.get(request.device_id)
        if _is_retry(device, attempt):
            # The same enrollment again: its answer never arrived, so the credential it
            # carried was never used. A new one replaces it; no use of the token, no event.
            assert device is not None
            rotated = False
        else:
            await _consume(uow, token)
            rotated = device is not None and device.decommissioned_at is None
            if device is None:
                device = await _register(uow, token, request, now)
            else:
                _re_enroll(uow, device, request, now, rotated)
        device.enrollment_id_hash = attempt
        device.credential_hash = runtime.hasher.hash(credential)
        device.credential_rotated_at = now
        # A (re)installed agent starts a new outbox; its sequence numbers start over.
        device.telemetry_sample_seq = 0
        device.telemetry_event_seq = 0
        await uow.commit()
    # After the commit, so a sync racing with us cannot cache the old credential again.
    runtime.devices.evict(device.id)
    return EnrollResponse(
        device_id=request.device_id,
        credential=credential,
        sync_interval_seconds=runtime.settings.sync_interval.total_seconds(),
        rotated=rotated,
        trust=trust.document(),
    )


def _is_retry(device: Device | None, attempt: str | None) -> bool:
    return (
        device is not None
        and attempt is not None
        and device.decommissioned_at is None
        and device.enrollment_id_hash == attempt
    )


async def _register(
    uow: UnitOfWork, token: EnrollmentToken, request: EnrollRequest, now: datetime
) -> Device:
    labels = {**token.labels, **request.labels}
    device = await uow.devices.add(
        Device(
            device_id=request.device_id,
            name=request.name or request.facts.hostname or request.device_id,
            credential_rotated_at=now,
            facts=request.facts.model_dump(mode="json"),
            labels=labels,
            presence=Presence.NEW.value,
            desired_generation=0,
            desired_state={},
            reported_generation=0,
            enrolled_at=now,
        )
    )
    await uow.devices.replace_labels(device, labels)
    uow.record(
        EventType.DEVICE_REGISTERED,
        f"device {device.name} registered with enrollment token {token.id}",
        device=device,
        data={"labels": labels, "facts": device.facts},
    )
    if token.group_name is not None:
        group = await uow.groups.get(token.group_name)
        if group is not None and group.kind == GroupKind.STATIC:
            await uow.groups.add_members(group, [device])
            uow.record(
                EventType.DEVICE_GROUPS_CHANGED,
                f"added to group {group.name}",
                device=device,
                data={"added": [group.name]},
            )
    return device


def _re_enroll(
    uow: UnitOfWork, device: Device, request: EnrollRequest, now: datetime, rotated: bool
) -> None:
    device.facts = request.facts.model_dump(mode="json")
    if request.name:
        device.name = request.name
    if rotated:
        uow.record(
            EventType.DEVICE_CREDENTIAL_ROTATED,
            "device re-enrolled: credential rotated, the old one no longer works",
            device=device,
        )
        return
    device.decommissioned_at = None
    device.presence = Presence.NEW.value
    uow.record(
        EventType.DEVICE_REGISTERED,
        f"device {device.name} re-registered after decommission",
        device=device,
    )
