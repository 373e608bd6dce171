"""Exactly once when an answer is lost: the server stored it, the agent never heard, it resends.

Through a proxy that forwards the request and drops the answer: a sync whose heartbeat the
server stored goes on to /telemetry from the outbox, and a telemetry batch the server stored
is sent again; each sample is stored once all the same.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.agent.lost_answers import lost_answers
from tests.agent.support import Admin, Agents, agent_env, register, wait_until
from tests.conftest import LiveServer

SYNC, TELEMETRY = "/api/device/v1/sync", "/api/device/v1/telemetry"
ENROLL = "/api/device/v1/enroll"


def single_use_token(admin: Admin) -> str:
    response = admin.http.post("/api/v1/enrollment-tokens", json={"max_uses": 1})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def test_every_sample_is_stored_once_when_answers_are_lost(
    fast_server: LiveServer, admin: Admin, agents: Agents, tmp_path: Path
) -> None:
    state = tmp_path / "agent"
    # Sync 3 is past the first answer, so the agent knows the server takes heartbeat seqs.
    # The telemetry dropped is the first that carries samples: the lost sync's, at least.
    drops = {(SYNC, 3, b""), (TELEMETRY, 1, b'"samples":[{')}
    with lost_answers(fast_server.url, drops) as proxy:
        done = register(
            state, admin.enrollment_token(), "--server", proxy.url, "--device-id", "lossy-1"
        )
        assert done.returncode == 0, done.stderr
        agent = agents.start(state, agent_env(interval="1", watch_timeout="2"))
        wait_until(lambda: len(proxy.dropped) == 2, 60, "a sync and a telemetry answer dropped")
        wait_until(lambda: agent.status().get("samples_synced", 0) >= 5, 60, "more syncs after")
        assert agent.stop() == 0
    taken = agent.status()
    assert proxy.dropped == [(SYNC, 3), (TELEMETRY, 1)], "the sync's answer first, then the batch's"
    assert taken["samples_queued"] >= 1, "the lost sync's sample went on through the outbox"
    assert admin.samples("lossy-1") == taken["samples_taken"], "each sample stored exactly once"
    assert "Traceback" not in agent.log()


def test_an_enrollment_whose_answer_is_lost_is_the_same_enrollment(
    fast_server: LiveServer, admin: Admin, tmp_path: Path
) -> None:
    # Single-use tokens: a retry that counted as a second enrollment would be refused.
    state = tmp_path / "agent"
    with lost_answers(fast_server.url, {(ENROLL, 1, b"")}) as proxy:
        done = register(state, single_use_token(admin), "--server", proxy.url, "--device-id", "e-1")
    assert proxy.dropped == [(ENROLL, 1)], "the server enrolled it; the agent never heard"
    assert done.returncode == 0, done.stderr
    assert "rotated" not in done.stdout, done.stdout

    # Every answer lost: register fails; run again later, it is still the same enrollment.
    again = tmp_path / "again"
    every = {(ENROLL, n, b"") for n in range(1, 5)}
    token = single_use_token(admin)
    with lost_answers(fast_server.url, every) as proxy:
        lost = register(again, token, "--server", proxy.url, "--device-id", "e-2")
    assert lost.returncode != 0 and len(proxy.dropped) == 4
    assert "Traceback" not in lost.stderr
    rerun = register(again, token, "--server", fast_server.url, "--device-id", "e-2")
    assert rerun.returncode == 0, rerun.stderr
    assert not (again / "enrollment-attempt").exists(), "forgotten once the identity is kept"
    types = [e["type"] for e in admin.events("e-2")]
    assert types.count("device.registered") == 1 and "device.credential_rotated" not in types
    # The credential the rerun stored is the one that works.
    credential = json.loads((again / "identity.json").read_text())["credential"]
    synced = httpx.post(
        f"{fast_server.url}{SYNC}", json={}, headers={"Authorization": f"Bearer {credential}"}
    )
    assert synced.status_code == 200, synced.text
