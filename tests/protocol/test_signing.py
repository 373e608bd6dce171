"""Signatures over bundle manifests and trust statements: what verifies and what never does."""

from __future__ import annotations

from typing import Any

import pytest

from signalbeam.protocol.signing import (
    KeyPair,
    SignatureError,
    Trust,
    TrustedKey,
    adopt,
    key_id,
    manifest_payload,
    verify,
)

SERVER, ALICE, MALLORY = KeyPair.generate(), KeyPair.generate(), KeyPair.generate()
BUNDLE: dict[str, Any] = {
    "name": "site",
    "version": "1.0.0",
    "apps": [{"name": "relay", "artifact": {"url": "http://x/a", "sha256": "a" * 64}}],
}


def trusted(pair: KeyPair, kind: Any = "operator") -> TrustedKey:
    return TrustedKey(pair.key_id, kind, pair.public_key)


def trust(*keys: TrustedKey, version: int = 1, operator_only: bool = False) -> Trust:
    return Trust(version, keys, operator_only)


BOTH = trust(trusted(SERVER, "server"), trusted(ALICE))


def signed(pair: KeyPair, bundle: dict[str, Any] = BUNDLE) -> list[dict[str, str]]:
    return [pair.sign(manifest_payload(bundle)).to_dict()]


def test_key_ids_name_the_key() -> None:
    assert SERVER.key_id == key_id(SERVER.public_key)
    assert SERVER.key_id.startswith("ed25519:") and len(SERVER.key_id) == len("ed25519:") + 16
    assert SERVER.key_id != ALICE.key_id


def test_a_trusted_signature_verifies_and_names_its_signer() -> None:
    assert verify(BOTH, manifest_payload(BUNDLE), signed(ALICE), "site@1.0.0").key_id == (
        ALICE.key_id
    )
    assert verify(BOTH, manifest_payload(BUNDLE), signed(SERVER), "site@1.0.0").kind == "server"


def test_payload_is_the_canonical_manifest_whatever_the_key_order() -> None:
    reordered = dict(reversed(list(BUNDLE.items())))
    assert manifest_payload(reordered) == manifest_payload(BUNDLE)
    assert manifest_payload(BUNDLE).startswith(b'{"bundle":{"apps":')


@pytest.mark.parametrize(
    ("signatures", "reason"),
    [
        ([], "signature verification failed (site@1.0.0 is not signed)"),
        (signed(MALLORY), f"signature verification failed (key {MALLORY.key_id} is not trusted)"),
        (
            signed(ALICE, {**BUNDLE, "version": "6.6.6"}),
            f"signature verification failed (key {ALICE.key_id}: site@1.0.0 does not match "
            "its signature)",
        ),
        (
            [{"key_id": ALICE.key_id, "signature": "bm90IGEgc2lnbmF0dXJl"}],
            f"signature verification failed (key {ALICE.key_id}: site@1.0.0 does not match "
            "its signature)",
        ),
    ],
    ids=["unsigned", "unknown-key", "edited-after-signing", "garbage"],
)
def test_refusals_say_why(signatures: list[dict[str, str]], reason: str) -> None:
    with pytest.raises(SignatureError) as caught:
        verify(BOTH, manifest_payload(BUNDLE), signatures, "site@1.0.0")
    assert caught.value.reason == reason


def test_operator_keys_only_refuses_the_server_key() -> None:
    only = trust(trusted(SERVER, "server"), trusted(ALICE), operator_only=True)
    with pytest.raises(SignatureError) as caught:
        verify(only, manifest_payload(BUNDLE), signed(SERVER), "site@1.0.0")
    assert caught.value.reason == (
        f"signature verification failed (key {SERVER.key_id}: only operator keys are trusted)"
    )
    assert verify(only, manifest_payload(BUNDLE), signed(SERVER) + signed(ALICE), "x").key_id == (
        ALICE.key_id
    )


def test_a_newer_trust_statement_is_adopted_only_when_a_trusted_key_signed_it() -> None:
    start = trust(trusted(SERVER, "server"))
    newer = trust(trusted(SERVER, "server"), trusted(ALICE), version=2)
    by_server = [SERVER.sign(newer.payload()).to_dict()]
    assert adopt(start, newer.statement(), by_server) == newer

    # Mallory cannot add her own key by signing the statement herself.
    evil = trust(trusted(SERVER, "server"), trusted(MALLORY), version=2)
    with pytest.raises(SignatureError, match="is not trusted"):
        adopt(start, evil.statement(), [MALLORY.sign(evil.payload()).to_dict()])

    # Once operator keys only, the server key cannot change the trust set any more.
    locked = trust(trusted(SERVER, "server"), trusted(ALICE), version=3, operator_only=True)
    unlock = trust(trusted(SERVER, "server"), trusted(ALICE), version=4)
    with pytest.raises(SignatureError, match="only operator keys are trusted"):
        adopt(locked, unlock.statement(), [SERVER.sign(unlock.payload()).to_dict()])
    assert adopt(locked, unlock.statement(), [ALICE.sign(unlock.payload()).to_dict()]) == unlock


def test_an_older_or_equal_statement_changes_nothing() -> None:
    current = trust(trusted(SERVER, "server"), trusted(ALICE), version=5)
    older = trust(trusted(SERVER, "server"), version=4)
    assert adopt(current, older.statement(), [SERVER.sign(older.payload()).to_dict()]) is current


def test_a_statement_whose_key_id_lies_is_refused() -> None:
    statement = trust(trusted(ALICE), version=2).statement()
    statement["keys"][0]["key_id"] = MALLORY.key_id
    with pytest.raises(SignatureError, match="bad trust statement"):
        Trust.from_statement(statement)
