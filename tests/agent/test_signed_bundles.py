"""Nothing unsigned, wrongly signed or edited after signing ever runs on a real agent.

One device runs relay 1.0.0 (signed by the server key, the zero-setup default). The tenant
then registers an operator key and switches to operator keys only; the trust change reaches
the device signed by a key it already trusts. Each refusal leaves 1.0.0 running, and the new
version's artifact is never even downloaded: the signature is checked first.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from signalbeam.protocol.bundle_v1 import parse_bundle
from signalbeam.protocol.signing import KeyPair, manifest_payload
from tests.agent.bundle_support import (
    ArtifactServer,
    answer,
    assign,
    push,
    relay,
    reported,
    serve_artifacts,
    start_agent,
)
from tests.agent.support import Admin, Agents, wait_until
from tests.components import free_port
from tests.conftest import LiveServer

DEVICE = "signed-1"


@pytest.fixture
def artifacts() -> Iterator[ArtifactServer]:
    yield from serve_artifacts()


def failed_with(admin: Admin, text: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        now = reported(admin, DEVICE)
        return now if now.get("status") == "failed" and text in now.get("reason", "") else None

    try:
        return wait_until(check, 60, f"{DEVICE} to fail with {text!r}")
    except AssertionError as err:
        raise AssertionError(f"{err}; it reports {reported(admin, DEVICE)}") from None


def raw_desired(admin: Admin, document: dict[str, Any]) -> None:
    body = {"devices": [DEVICE], "spec": document, "summary": "test: hand-made document"}
    response = admin.http.post("/api/v1/devices/desired-state", json=body)
    assert response.status_code == 200, response.text


def test_only_bundles_signed_by_a_trusted_key_run(
    fast_server: LiveServer, admin: Admin, agents: Agents, artifacts: ArtifactServer, tmp_path: Path
) -> None:
    agent = start_agent(fast_server, admin, agents, tmp_path, DEVICE)
    port, flag = free_port(), tmp_path / "flag"
    flag.touch()
    push(admin, relay("1.0.0", artifacts, port, flag))
    assign(admin, "relay@1.0.0", devices=[DEVICE])
    wait_until(lambda: reported(admin, DEVICE).get("version") == "1.0.0" or None, 60, "1.0.0")
    assert answer(port) == "1.0.0"

    alice, mallory = KeyPair.generate(), KeyPair.generate()
    added = admin.http.post(
        "/api/v1/signing-keys", json={"name": "alice", "public_key": alice.public_key}
    )
    assert added.status_code == 201, added.text
    only = admin.http.put("/api/v1/signing/policy", json={"operator_keys_only": True})
    assert only.status_code == 200, only.text

    # Pushed after the switch: the server no longer signs, so nobody did.
    new_port = free_port()
    bundle = relay("1.1.0", artifacts, new_port, flag)
    push(admin, bundle)
    assign(admin, "relay@1.1.0", devices=[DEVICE])
    failed_with(admin, "relay@1.1.0: signature verification failed (relay@1.1.0 is not signed)")

    # Signed by a key the device never trusted (the server refuses to store it, so hand it over).
    document = copy.deepcopy(admin.device(DEVICE)["desired_state"])
    canonical = parse_bundle(bundle).canonical()
    refused = admin.http.post(
        "/api/v1/bundles/relay/versions/1.1.0/signatures",
        json=mallory.sign(manifest_payload(canonical)).to_dict(),
    )
    assert refused.status_code == 422, refused.text
    document["signatures"] = [mallory.sign(manifest_payload(canonical)).to_dict()]
    raw_desired(admin, document)
    failed_with(admin, f"signature verification failed (key {mallory.key_id} is not trusted)")

    # Alice signs it; then the manifest is edited after signing (the command now differs).
    signature = alice.sign(manifest_payload(canonical)).to_dict()
    stored = admin.http.post("/api/v1/bundles/relay/versions/1.1.0/signatures", json=signature)
    assert stored.status_code == 201, stored.text
    edited = copy.deepcopy(canonical)
    edited["apps"][0]["command"].append("--evil")
    document["bundle"], document["signatures"] = edited, [signature]
    document["digest"] = parse_bundle(edited).digest()
    raw_desired(admin, document)
    failed_with(
        admin, f"signature verification failed (key {alice.key_id}: relay@1.1.0 does not match"
    )

    # None of the refused versions got as far as a download, and 1.0.0 kept running.
    assert "/relay-1.1.0.tar.gz" not in artifacts.requests
    assert answer(port) == "1.0.0" and answer(new_port) == ""
    assert reported(admin, DEVICE)["version"] == "1.0.0"
    failures = [e for e in admin.events(DEVICE) if e["type"] == "agent.update_failed"]
    assert any("signature verification failed" in e["message"] for e in failures)

    # Properly signed by alice: it runs.
    assign(admin, "relay@1.1.0", devices=[DEVICE])
    wait_until(
        lambda: (
            (
                reported(admin, DEVICE).get("status") == "running"
                and reported(admin, DEVICE).get("version") == "1.1.0"
            )
            or None
        ),
        60,
        "1.1.0 to run",
    )
    assert answer(new_port) == "1.1.0"
    assert agent.alive(), agent.log()
