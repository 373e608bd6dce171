"""A rollout across a simulated fleet through a real server: default waves, all the way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from signalbeam.sim.fleet import Fleet
from tests.conftest import LiveServer
from tests.rollout_support import BUNDLE, bundle
from tests.sim.support import admin_api, devices, enrollment_token, eventually, fleet_config

COUNT = 100


async def test_default_waves_carry_a_simulated_fleet_to_the_new_version(
    live_server: LiveServer, tmp_path: Path
) -> None:
    async with admin_api(live_server.url, live_server.admin_token) as api:
        token = await enrollment_token(api, {"env": "sim"})
        config = fleet_config(
            live_server.url, token, COUNT, tmp_path / "sim.json", watch=True, apply_time=0.2
        )
        assert (await api.post("/api/v1/bundles", json=bundle("1.0.0"))).status_code == 201
        async with Fleet(config) as fleet:

            async def online() -> bool:
                return len(await devices(api, "online")) == COUNT

            await eventually(online, f"{COUNT} devices online")
            body = {"bundle": BUNDLE, "version": "1.0.0", "selector": "env=sim", "soak": "1s"}
            created = await api.post("/api/v1/rollouts", json=body)
            assert created.status_code == 201, created.text
            path = f"/api/v1/rollouts/{created.json()['id']}"

            async def completed() -> dict[str, Any] | None:
                detail: dict[str, Any] = (await api.get(path)).json()
                return detail if detail["status"] != "running" else None

            done = await eventually(completed, "the rollout to end", timeout=180)
        assert done["status"] == "completed", done["reason"]
        assert fleet.stats.applies_failed == 0
    assert [wave["devices"] for wave in done["waves"]] == [1, 9, 40, 50]
    assert done["counts"]["succeeded"] == COUNT
