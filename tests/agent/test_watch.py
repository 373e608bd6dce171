"""Desired-state changes reach a running agent in well under a second (long-poll watch)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from signalbeam.domain.model import Role
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.context import Actor
from signalbeam.server.services.desired import set_desired
from tests.agent.support import Agents, agent_env, register, wait_until_async
from tests.components import free_port


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[str]:
    """The in-process app (default 15 s sync hint) served over real HTTP on loopback.

    In-process so the test can change a device's desired state the way the rollout engine
    will; served by uvicorn so a real agent process can reach it.
    """
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    await wait_until_async(lambda: server.started or serving.done(), 15, "uvicorn to start")
    yield f"http://127.0.0.1:{port}"
    # Release held long polls first, as the real server does when it shuts down.
    runtime: Runtime = app.state.runtime
    runtime.watchers.wake_all()
    server.should_exit = True
    await serving


async def test_desired_state_reaches_a_running_agent_at_once(
    served: str, runtime: Runtime, admin_token: str, agents: Agents, tmp_path: Path
) -> None:
    headers = {"Authorization": f"Bearer {admin_token}"}
    async with httpx.AsyncClient(base_url=served, headers=headers) as admin:
        token = (await admin.post("/api/v1/enrollment-tokens", json={})).json()["token"]
        state = tmp_path / "agent"
        done = await asyncio.to_thread(
            register, state, token, "--server", served, "--device-id", "fast-1"
        )
        assert done.returncode == 0, done.stderr
        agent = agents.start(state, agent_env(watch_timeout="30"))
        await wait_until_async(lambda: runtime.watchers.watching > 0, 20, "a held watch")

        operator = Actor(1, "user", "admin", Role.ADMIN, 1)
        started = time.monotonic()
        generations = await set_desired(
            runtime, operator, ["fast-1"], {"bundle": "demo@1.0.0"}, "desired state: demo@1.0.0"
        )
        generation = generations["fast-1"]
        await wait_until_async(
            lambda: agent.status().get("desired_generation") == generation,
            5,
            "the agent to hold the new generation",
        )
        latency = time.monotonic() - started
        assert latency < 1.0, f"took {latency:.2f} s with a 15 s sync interval"
        assert (state / "desired.json").read_text().count("demo@1.0.0") == 1

        async def reported() -> int:
            device = (await admin.get("/api/v1/devices/fast-1")).json()
            return int(device["reported_generation"])

        deadline = time.monotonic() + 5
        while await reported() != generation:
            assert time.monotonic() < deadline, "the reported state did not come back promptly"
            await asyncio.sleep(0.05)
        events = (await admin.get("/api/v1/events", params={"device": "fast-1"})).json()["items"]
        received = [e for e in events if e["type"] == "agent.desired_state_received"]
        assert received and received[0]["data"]["generation"] == generation
        assert await asyncio.to_thread(agent.stop) == 0
