"""Signing: the tenant's trust set, operator keys, the server's own key, bundle signatures.

Every tenant gets a server key on first use, so pushes are signed with zero setup. An admin
registers operator public keys (their private halves stay on the operators' machines) and
may switch the tenant to operator keys only; from then on devices refuse bundles signed only
by the server. Devices pin the trust statement they got at enrollment and adopt a newer one
only when a key they trust signed it: while the server key is trusted the server signs
statements itself; afterwards an operator must (`signalbeam keys register --sign-with`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from signalbeam.domain.errors import Conflict, InvalidInput, NotFound
from signalbeam.domain.model import EventType, Role
from signalbeam.protocol.signing import (
    KeyPair,
    Signature,
    SignatureError,
    Trust,
    TrustedKey,
    key_id,
    manifest_payload,
    verify,
)
from signalbeam.server.db.models import BundleSignature, BundleVersion, SigningKey, TenantPolicy
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.context import Actor, UnitOfWork

SERVER_KEY_NAME = "server"


@dataclass(frozen=True)
class TrustState:
    """The current trust set and the signatures that vouch for it."""

    trust: Trust
    signatures: list[dict[str, str]]

    def document(self) -> dict[str, Any]:
        return {"statement": self.trust.statement(), "signatures": self.signatures}


def _trust_of(keys: list[SigningKey], policy: TenantPolicy) -> Trust:
    return Trust(
        version=policy.trust_version,
        keys=tuple(
            TrustedKey(k.key_id, "server" if k.kind == "server" else "operator", k.public_key)
            for k in keys
        ),
        operator_keys_only=policy.operator_keys_only,
    )


def _server_pair(keys: list[SigningKey]) -> KeyPair | None:
    for key in keys:
        if key.kind == "server" and key.private_key:
            return KeyPair(key.private_key, key.public_key)
    return None


async def ensure_trust(uow: UnitOfWork) -> TrustState:
    """The tenant's trust state, creating the server key and policy on first use (flushes)."""
    policy = await uow.signing.policy()
    if policy is None:
        try:
            # A savepoint: a concurrent first use may create them first; then read theirs.
            async with uow.session.begin_nested():
                policy = await _create_trust(uow)
        except IntegrityError:
            policy = await uow.signing.policy()
            if policy is None:
                raise
    return await _state(uow, policy)


async def _create_trust(uow: UnitOfWork) -> TenantPolicy:
    now = datetime.now(UTC)
    pair = KeyPair.generate()
    await uow.signing.add_key(
        SigningKey(
            name=SERVER_KEY_NAME,
            key_id=pair.key_id,
            kind="server",
            public_key=pair.public_key,
            private_key=pair.private_key,
            created_at=now,
            created_by="system",
        )
    )
    return await uow.signing.add_policy(
        TenantPolicy(operator_keys_only=False, trust_version=1, trust_signatures=[], updated_at=now)
    )


async def _state(uow: UnitOfWork, policy: TenantPolicy) -> TrustState:
    keys = await uow.signing.keys()
    trust = _trust_of(keys, policy)
    signatures = list(policy.trust_signatures or [])
    pair = _server_pair(keys)
    signed = {s.get("key_id") for s in signatures}
    if pair is not None and not trust.operator_keys_only and pair.key_id not in signed:
        signatures.append(pair.sign(trust.payload()).to_dict())
    return TrustState(trust, signatures)


async def server_sign(uow: UnitOfWork, row: BundleVersion) -> None:
    """Sign a freshly pushed version with the server key (the zero-setup default)."""
    state = await ensure_trust(uow)
    pair = _server_pair(await uow.signing.keys())
    if pair is None or state.trust.operator_keys_only:
        return
    signature = pair.sign(manifest_payload(row.spec))
    await uow.signing.add_signature(
        BundleSignature(
            bundle_version_id=row.id,
            key_id=signature.key_id,
            signature=signature.signature,
            created_at=datetime.now(UTC),
            created_by="server",
        )
    )


async def bundle_document(uow: UnitOfWork, row: BundleVersion) -> dict[str, Any]:
    """The desired-state document for a bundle version: spec, digest, signatures, trust."""
    state = await ensure_trust(uow)
    signatures = [
        Signature(s.key_id, s.signature).to_dict() for s in await uow.signing.signatures(row.id)
    ]
    return {
        "kind": "bundle",
        "digest": row.digest,
        "bundle": row.spec,
        "signatures": signatures,
        "trust": state.document(),
    }


async def current_trust(runtime: Runtime, actor: Actor) -> TrustState:
    """What devices enrolled now would pin."""
    async with runtime.unit_of_work(actor) as uow:
        state = await ensure_trust(uow)
        await uow.commit()
    return state


@dataclass(frozen=True)
class KeyView:
    name: str
    key_id: str
    kind: str
    public_key: str
    created_at: datetime
    created_by: str


async def list_keys(runtime: Runtime, actor: Actor) -> tuple[list[KeyView], TrustState]:
    async with runtime.unit_of_work(actor) as uow:
        state = await ensure_trust(uow)
        keys = await uow.signing.keys()
        await uow.commit()
    views = [
        KeyView(k.name, k.key_id, k.kind, k.public_key, k.created_at, k.created_by) for k in keys
    ]
    return views, state


def _proposal(state: TrustState, **changes: Any) -> Trust:
    trust = state.trust
    return Trust(
        version=trust.version + 1,
        keys=changes.get("keys", trust.keys),
        operator_keys_only=changes.get("operator_keys_only", trust.operator_keys_only),
    )


def _vouch(
    state: TrustState, proposed: Trust, offered: list[dict[str, str]], server: KeyPair | None
) -> list[dict[str, str]]:
    """Signatures over `proposed` that devices trusting `state` accept; refuse when none.

    While devices still trust the server key, the server signs the change itself, which is
    also how the switch to operator keys only reaches them.
    """
    payload = proposed.payload()
    accepted = []
    for signature in offered:
        try:
            verify(state.trust, payload, [signature], f"trust statement v{proposed.version}")
        except SignatureError:
            continue
        accepted.append(signature)
    if not accepted and state.trust.operator_keys_only:
        raise InvalidInput(
            "this tenant trusts operator keys only: sign the change with a registered operator "
            "key (signalbeam keys register NAME --sign-with KEY)",
            field="trust_signature",
        )
    if offered and not accepted:
        raise InvalidInput(
            "trust_signature does not verify with any trusted key; sign the proposed statement "
            f"v{proposed.version} (GET /api/v1/signing/trust) with a registered key",
            field="trust_signature",
        )
    if server is not None and not state.trust.operator_keys_only:
        accepted.append(server.sign(payload).to_dict())
    return accepted


async def register_key(
    runtime: Runtime,
    actor: Actor,
    name: str,
    public_key: str,
    trust_signatures: list[dict[str, str]],
) -> KeyView:
    """Trust an operator's public key from now on (the next trust statement adds it)."""
    actor.require(Role.ADMIN)
    try:
        kid = key_id(public_key)
    except SignatureError as err:
        raise InvalidInput(
            f"public_key: {err.reason}; pass the base64 of a raw ed25519 public key",
            field="public_key",
        ) from err
    async with runtime.unit_of_work(actor) as uow:
        state = await ensure_trust(uow)
        keys = await uow.signing.keys()
        if any(k.key_id == kid for k in keys):
            raise Conflict(f"key {kid} is already registered", field="public_key")
        if any(k.name == name for k in keys):
            raise Conflict(f"a key named {name!r} exists; pick another name", field="name")
        new = TrustedKey(kid, "operator", public_key)
        proposed = _proposal(state, keys=(*state.trust.keys, new))
        good = _vouch(state, proposed, trust_signatures, _server_pair(keys))
        now = datetime.now(UTC)
        row = await uow.signing.add_key(
            SigningKey(
                name=name,
                key_id=kid,
                kind="operator",
                public_key=public_key,
                private_key=None,
                created_at=now,
                created_by=str(actor),
            )
        )
        await _advance(uow, proposed, good, now)
        uow.record(
            EventType.SIGNING_KEY_REGISTERED,
            f"signing key {name} ({kid}) registered",
            data={"name": name, "key_id": kid},
        )
        await uow.commit()
    return KeyView(row.name, row.key_id, row.kind, row.public_key, row.created_at, row.created_by)


async def _advance(
    uow: UnitOfWork, proposed: Trust, good: list[dict[str, str]], now: datetime
) -> None:
    policy = await uow.signing.policy(for_update=True)
    if policy is None:
        raise LookupError("trust policy vanished mid-transaction")
    policy.trust_version = proposed.version
    policy.operator_keys_only = proposed.operator_keys_only
    policy.trust_signatures = good
    policy.updated_at = now


async def set_policy(
    runtime: Runtime, actor: Actor, operator_keys_only: bool, trust_signatures: list[dict[str, str]]
) -> TrustState:
    """Switch operator-keys-only on or off (a new, signed trust statement)."""
    actor.require(Role.ADMIN)
    async with runtime.unit_of_work(actor) as uow:
        state = await ensure_trust(uow)
        if state.trust.operator_keys_only == operator_keys_only:
            await uow.commit()
            return state
        if operator_keys_only and not any(k.kind == "operator" for k in state.trust.keys):
            raise InvalidInput(
                "register an operator key first (signalbeam keys create NAME, then keys "
                "register NAME); otherwise no bundle could ever be trusted",
                field="operator_keys_only",
            )
        proposed = _proposal(state, operator_keys_only=operator_keys_only)
        good = _vouch(state, proposed, trust_signatures, _server_pair(await uow.signing.keys()))
        await _advance(uow, proposed, good, datetime.now(UTC))
        uow.record(
            EventType.SIGNING_POLICY_CHANGED,
            "bundles must be signed by an operator key"
            if operator_keys_only
            else "bundles signed by the server key are trusted again",
            data={"operator_keys_only": operator_keys_only, "trust_version": proposed.version},
        )
        policy = await uow.signing.policy()
        assert policy is not None
        new_state = await _state(uow, policy)
        await uow.commit()
    return new_state


async def add_signature(
    runtime: Runtime, actor: Actor, name: str, version: str, signature: dict[str, str]
) -> BundleSignature:
    """Attach an operator's signature to a stored version, after checking it verifies."""
    actor.require(Role.OPERATOR)
    async with runtime.unit_of_work(actor) as uow:
        row = await uow.bundles.version(name, version)
        if row is None:
            raise NotFound(f"no version {version} of bundle {name}", field="version")
        keys = {k.key_id: k for k in await uow.signing.keys()}
        kid = signature.get("key_id", "")
        key = keys.get(kid)
        if key is None or key.kind != "operator":
            raise InvalidInput(
                f"key_id: {kid or '(none)'} is not a registered operator key; "
                "register it with signalbeam keys register NAME",
                field="key_id",
            )
        only = Trust(0, (TrustedKey(key.key_id, "operator", key.public_key),))
        try:
            verify(only, manifest_payload(row.spec), [signature], f"{name}@{version}")
        except SignatureError as err:
            raise InvalidInput(
                f"signature: {err.reason}; sign the canonical manifest of {name}@{version}",
                field="signature",
            ) from err
        existing = [s for s in await uow.signing.signatures(row.id) if s.key_id == kid]
        if existing:
            await uow.commit()
            return existing[0]
        stored = await uow.signing.add_signature(
            BundleSignature(
                bundle_version_id=row.id,
                key_id=kid,
                signature=signature["signature"],
                created_at=datetime.now(UTC),
                created_by=str(actor),
            )
        )
        uow.record(
            EventType.BUNDLE_SIGNED,
            f"bundle {name}@{version} signed with {key.name} ({kid})",
            data={"bundle": name, "version": version, "key_id": kid},
        )
        await uow.commit()
    return stored
