"""Signing through the real management API: trust statements, operator keys, policy, signatures."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from signalbeam.protocol.bundle_v1 import parse_bundle
from signalbeam.protocol.signing import KeyPair, Trust, adopt, manifest_payload, verify
from tests.helpers import enrollment_token

BUNDLE: dict[str, Any] = {
    "name": "site",
    "version": "1.0.0",
    "containers": [{"name": "web", "image": "127.0.0.1:5000/site:1.0.0"}],
}


async def trust_of(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/api/v1/signing/trust")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_every_tenant_starts_with_a_server_key_that_signs_pushes(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    first = await trust_of(client)
    trust = Trust.from_statement(first["statement"])
    assert (first["version"], first["operator_keys_only"]) == (1, False)
    assert [k.kind for k in trust.keys] == ["server"]
    # The statement vouches for itself with the server key: what a device pins at enrollment.
    verify(trust, trust.payload(), first["signatures"], "trust")

    enrolled = await anon.post(
        "/api/device/v1/enroll",
        json={"token": await enrollment_token(client), "device_id": "pi-1"},
    )
    assert enrolled.json()["trust"] == {
        "statement": first["statement"],
        "signatures": first["signatures"],
    }
    assert (await client.post("/api/v1/bundles", json=BUNDLE)).status_code == 201
    assigned = await client.post(
        "/api/v1/bundles/site/versions/1.0.0/assign", json={"devices": ["pi-1"]}
    )
    assert assigned.status_code == 200, assigned.text
    document = (await client.get("/api/v1/devices/pi-1")).json()["desired_state"]
    signer = verify(
        trust, manifest_payload(document["bundle"]), document["signatures"], "site@1.0.0"
    )
    assert signer.kind == "server"


async def test_keys_and_policy_changes_are_signed_trust_statements(
    client: httpx.AsyncClient,
) -> None:
    start = Trust.from_statement((await trust_of(client))["statement"])
    alice, bob = KeyPair.generate(), KeyPair.generate()

    too_early = await client.put("/api/v1/signing/policy", json={"operator_keys_only": True})
    assert too_early.status_code == 422
    assert too_early.json()["field"] == "operator_keys_only"
    assert "register an operator key first" in too_early.json()["detail"]

    added = await client.post(
        "/api/v1/signing-keys", json={"name": "alice", "public_key": alice.public_key}
    )
    assert added.status_code == 201, added.text
    assert added.json()["key_id"] == alice.key_id
    switched = await client.put("/api/v1/signing/policy", json={"operator_keys_only": True})
    assert switched.status_code == 200, switched.text
    now = switched.json()
    # A device still pinning v1 can follow: the server key signed the switch while trusted.
    followed = adopt(start, now["statement"], now["signatures"])
    assert (followed.version, followed.operator_keys_only) == (3, True)

    # From now on only an operator key may change the trust set.
    unsigned = await client.post(
        "/api/v1/signing-keys", json={"name": "bob", "public_key": bob.public_key}
    )
    assert unsigned.status_code == 422
    assert unsigned.json()["field"] == "trust_signature"
    proposed = Trust(4, (*followed.keys, *_operator(bob)), True)
    signed = await client.post(
        "/api/v1/signing-keys",
        json={
            "name": "bob",
            "public_key": bob.public_key,
            "trust_signatures": [alice.sign(proposed.payload()).to_dict()],
        },
    )
    assert signed.status_code == 201, signed.text
    latest = await trust_of(client)
    assert adopt(followed, latest["statement"], latest["signatures"]) == proposed

    # Pushes are no longer server-signed; an operator signature is checked before it is kept.
    assert (await client.post("/api/v1/bundles", json=BUNDLE)).status_code == 201
    canonical = parse_bundle(BUNDLE).canonical()
    path = "/api/v1/bundles/site/versions/1.0.0/signatures"
    forged = await client.post(
        path, json=alice.sign(manifest_payload({**canonical, "version": "9.9.9"})).to_dict()
    )
    assert forged.status_code == 422 and forged.json()["field"] == "signature"
    stranger = KeyPair.generate().sign(manifest_payload(canonical)).to_dict()
    unknown = await client.post(path, json=stranger)
    assert unknown.status_code == 422 and unknown.json()["field"] == "key_id"
    good = await client.post(path, json=alice.sign(manifest_payload(canonical)).to_dict())
    assert good.status_code == 201, good.text
    listed = (await client.get("/api/v1/signing-keys")).json()
    assert [k["name"] for k in listed] == ["server", "alice", "bob"]


def _operator(pair: KeyPair) -> tuple[Any, ...]:
    from signalbeam.protocol.signing import TrustedKey

    return (TrustedKey(pair.key_id, "operator", pair.public_key),)


async def test_a_bad_public_key_is_named(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/signing-keys", json={"name": "carol", "public_key": "bm90IGEga2V5"}
    )
    assert response.status_code == 422
    assert response.json()["field"] == "public_key"
    assert "ed25519 uses 32" in response.json()["detail"]


async def test_concurrent_first_enrollments_all_get_the_same_trust(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    token = await enrollment_token(client, max_uses=20)
    answers = await asyncio.gather(
        *(
            anon.post("/api/device/v1/enroll", json={"token": token, "device_id": f"pi-{n}"})
            for n in range(20)
        )
    )
    assert [a.status_code for a in answers] == [200] * 20, [a.text for a in answers][:2]
    assert len({str(a.json()["trust"]) for a in answers}) == 1
