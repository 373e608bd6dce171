"""Signing: the trust set devices pin, operator keys, the signing policy, bundle signatures."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field, StrictBool

from signalbeam.server.api.deps import CurrentActor, RuntimeDep
from signalbeam.server.api.management.v1.schemas import Body
from signalbeam.server.services import signing as signing_service

router = APIRouter(tags=["signing"])

# Raw ed25519 keys are 32 bytes and signatures 64: their base64 has exactly this shape.
KEY_B64 = r"^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$"
SIGNATURE_B64 = r"^[A-Za-z0-9+/]{85}[AQgw]==$"


class SignatureIn(Body):
    key_id: str = Field(min_length=1, max_length=80)
    signature: str = Field(pattern=SIGNATURE_B64, description="base64 of a 64-byte signature")


class KeyRegister(Body):
    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    # `key_id` checks it, saying whether it is not base64 or not 32 bytes.
    public_key: str = Field(
        max_length=200,
        json_schema_extra={"pattern": KEY_B64},
        description="base64 of a raw 32-byte ed25519 key",
    )
    trust_signatures: list[SignatureIn] = Field(
        default=[],
        max_length=16,
        description="signatures over the next trust statement; required once operator keys only",
    )


class PolicyChange(Body):
    operator_keys_only: StrictBool
    trust_signatures: list[SignatureIn] = Field(default=[], max_length=16)


class KeyPublic(BaseModel):
    name: str
    key_id: str
    kind: str
    public_key: str
    created_at: datetime
    created_by: str


class TrustPublic(BaseModel):
    version: int
    operator_keys_only: bool
    statement: dict[str, Any] = Field(description="the canonical trust statement devices pin")
    signatures: list[dict[str, str]]


class SignaturePublic(BaseModel):
    key_id: str
    created_at: datetime
    created_by: str


def _trust(state: signing_service.TrustState) -> TrustPublic:
    return TrustPublic(
        version=state.trust.version,
        operator_keys_only=state.trust.operator_keys_only,
        statement=state.trust.statement(),
        signatures=state.signatures,
    )


def _key(view: signing_service.KeyView) -> KeyPublic:
    return KeyPublic(**view.__dict__)


@router.get("/signing/trust", response_model=TrustPublic)
async def trust(runtime: RuntimeDep, actor: CurrentActor) -> TrustPublic:
    """The trust statement devices enrolled now pin, with its signatures."""
    return _trust(await signing_service.current_trust(runtime, actor))


@router.put("/signing/policy", response_model=TrustPublic)
async def policy(body: PolicyChange, runtime: RuntimeDep, actor: CurrentActor) -> TrustPublic:
    """Trust operator keys only (or the server key again); admins only."""
    signatures = [s.model_dump() for s in body.trust_signatures]
    return _trust(
        await signing_service.set_policy(runtime, actor, body.operator_keys_only, signatures)
    )


@router.get("/signing-keys", response_model=list[KeyPublic])
async def list_keys(runtime: RuntimeDep, actor: CurrentActor) -> list[KeyPublic]:
    """Every key the tenant's devices trust: the server's own and operators'."""
    views, _ = await signing_service.list_keys(runtime, actor)
    return [_key(v) for v in views]


@router.post("/signing-keys", response_model=KeyPublic, status_code=201)
async def register(body: KeyRegister, runtime: RuntimeDep, actor: CurrentActor) -> KeyPublic:
    """Trust an operator's public key; admins only."""
    signatures = [s.model_dump() for s in body.trust_signatures]
    view = await signing_service.register_key(
        runtime, actor, body.name, body.public_key, signatures
    )
    return _key(view)


@router.post(
    "/bundles/{name}/versions/{version}/signatures",
    response_model=SignaturePublic,
    status_code=201,
)
async def sign(
    name: str, version: str, body: SignatureIn, runtime: RuntimeDep, actor: CurrentActor
) -> SignaturePublic:
    """Attach an operator signature over the version's canonical manifest."""
    stored = await signing_service.add_signature(runtime, actor, name, version, body.model_dump())
    return SignaturePublic(
        key_id=stored.key_id, created_at=stored.created_at, created_by=stored.created_by
    )
