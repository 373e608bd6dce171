"""Signed bundles and the trust set devices pin: ed25519 through `cryptography`, nothing rolled here.

What is signed is always a canonical serialisation (`canonical_json`: sorted keys, no
whitespace, UTF-8) of a small typed document, so the same bytes come out of the CLI, the
server and the agent:

- a bundle manifest: `{"type": "signalbeam.bundle-manifest.v1", "bundle": <canonical spec>}`;
  the spec pins every artifact sha256 and image reference;
- a trust statement: `{"type": "signalbeam.trust.v1", "version": N, "operator_keys_only": b,
  "keys": [{"key_id", "kind", "public_key"}...]}` — the keys a device accepts. A device
  adopts a newer statement only when a key it already trusts signed it (and, once operator
  keys only is on, only an operator key), so rotation is an explicit, signed operation.

Keys are raw 32-byte ed25519 keys in base64; a key id is `ed25519:` and the first 16 hex
digits of the public key's sha256.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from signalbeam.protocol.canonical import canonical_json

MANIFEST_TYPE = "signalbeam.bundle-manifest.v1"
TRUST_TYPE = "signalbeam.trust.v1"
KeyKind = Literal["operator", "server"]


class SignatureError(Exception):
    """A signature or key that does not verify; `reason` is what a device reports."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class KeyPair:
    """An ed25519 key pair as base64 of the raw 32-byte keys."""

    private_key: str
    public_key: str

    @classmethod
    def generate(cls) -> KeyPair:
        private = Ed25519PrivateKey.generate()
        raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return cls(_b64(raw), _b64(public))

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    def sign(self, payload: bytes) -> Signature:
        private = Ed25519PrivateKey.from_private_bytes(_raw(self.private_key, "private key"))
        return Signature(self.key_id, _b64(private.sign(payload)))


@dataclass(frozen=True)
class Signature:
    key_id: str
    signature: str

    def to_dict(self) -> dict[str, str]:
        return {"key_id": self.key_id, "signature": self.signature}


@dataclass(frozen=True)
class TrustedKey:
    key_id: str
    kind: KeyKind
    public_key: str

    def to_dict(self) -> dict[str, str]:
        return {"key_id": self.key_id, "kind": self.kind, "public_key": self.public_key}


@dataclass(frozen=True)
class Trust:
    """The keys a device accepts bundles from, and whether the server's own key counts."""

    version: int
    keys: tuple[TrustedKey, ...]
    operator_keys_only: bool = False

    def __post_init__(self) -> None:
        # One order for one set: equal sets compare equal and serialise the same.
        object.__setattr__(self, "keys", tuple(sorted(self.keys, key=lambda k: k.key_id)))

    def statement(self) -> dict[str, Any]:
        return {
            "type": TRUST_TYPE,
            "version": self.version,
            "operator_keys_only": self.operator_keys_only,
            "keys": [k.to_dict() for k in self.keys],
        }

    def payload(self) -> bytes:
        return canonical_json(self.statement())

    def signers(self) -> dict[str, TrustedKey]:
        """The keys whose signatures count under this trust set."""
        return {
            k.key_id: k for k in self.keys if not (self.operator_keys_only and k.kind == "server")
        }

    @classmethod
    def from_statement(cls, statement: Mapping[str, Any]) -> Trust:
        """Decode a statement; raises `SignatureError` when it is not one."""
        try:
            if statement.get("type") != TRUST_TYPE:
                raise ValueError("not a trust statement")
            keys = tuple(
                TrustedKey(str(k["key_id"]), _kind(k["kind"]), str(k["public_key"]))
                for k in statement["keys"]
            )
            for k in keys:
                if key_id(k.public_key) != k.key_id:
                    raise ValueError(f"key id {k.key_id} does not match its key")
            return cls(int(statement["version"]), keys, bool(statement["operator_keys_only"]))
        except (KeyError, TypeError, ValueError, SignatureError) as err:
            raise SignatureError(
                f"signature verification failed (bad trust statement: {err})"
            ) from err


def key_id(public_key: str) -> str:
    """`ed25519:` + 16 hex digits of the sha256 of the raw public key."""
    return "ed25519:" + hashlib.sha256(_raw(public_key, "public key")).hexdigest()[:16]


def manifest_payload(bundle: Mapping[str, Any]) -> bytes:
    """The bytes a bundle signature covers: type-tagged canonical spec."""
    return canonical_json({"type": MANIFEST_TYPE, "bundle": dict(bundle)})


def verify_one(public_key: str, payload: bytes, signature: str) -> bool:
    try:
        key = Ed25519PublicKey.from_public_bytes(_raw(public_key, "public key"))
        key.verify(_raw(signature, "signature", size=64), payload)
    except (InvalidSignature, SignatureError, ValueError):
        return False
    return True


def verify(
    trust: Trust, payload: bytes, signatures: Iterable[Mapping[str, Any]], what: str
) -> TrustedKey:
    """The trusted key that signed `payload`, or `SignatureError` saying why none did."""
    signers = trust.signers()
    offered = [(str(s.get("key_id", "")), str(s.get("signature", ""))) for s in signatures]
    if not offered:
        raise SignatureError(f"signature verification failed ({what} is not signed)")
    for kid, signature in offered:
        key = signers.get(kid)
        if key is not None and verify_one(key.public_key, payload, signature):
            return key
    known = [kid for kid, _ in offered if kid in signers]
    if known:
        raise SignatureError(
            f"signature verification failed (key {known[0]}: {what} does not match its signature)"
        )
    untrusted = ", ".join(kid for kid, _ in offered)
    if trust.operator_keys_only and any(
        k.kind == "server" and k.key_id in dict(offered) for k in trust.keys
    ):
        raise SignatureError(
            f"signature verification failed (key {untrusted}: only operator keys are trusted)"
        )
    raise SignatureError(f"signature verification failed (key {untrusted} is not trusted)")


def adopt(
    current: Trust, statement: Mapping[str, Any], signatures: Iterable[Mapping[str, Any]]
) -> Trust:
    """The newer trust set when `current` trusts its signer; `current` when not newer."""
    proposed = Trust.from_statement(statement)
    if proposed.version <= current.version:
        return current
    verify(current, proposed.payload(), signatures, f"trust statement v{proposed.version}")
    return proposed


def _kind(value: Any) -> KeyKind:
    if value == "operator":
        return "operator"
    if value == "server":
        return "server"
    raise ValueError(f"unknown key kind {value!r}")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _raw(text: str, what: str, size: int = 32) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as err:
        raise SignatureError(f"the {what} is not base64") from err
    if len(raw) != size:
        raise SignatureError(f"the {what} is {len(raw)} bytes; ed25519 uses {size}")
    return raw
