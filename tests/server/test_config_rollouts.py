"""A rollout moves devices to a new bundle version without losing their config."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from signalbeam.server.settings import ServerSettings
from tests.rollout_support import BUNDLE, enroll_fleet, push, status_is


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> ServerSettings:
    """The usual test settings with a brisk engine, so rollouts move in test time."""
    return ServerSettings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        mdns=False,
        rollout_interval=timedelta(seconds=0.2),
    )


async def test_the_rollout_engine_keeps_each_devices_config(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    fleet = await enroll_fleet(client, anon, 3, {"site": "oslo"})
    await push(client, "1.0.0")
    await push(client, "2.0.0")
    layer = await client.patch(
        "/api/v1/config/tenant", json={"set": {"LOG_LEVEL": "info"}, "secrets": {"KEY": "k-1"}}
    )
    assert layer.status_code == 200, layer.text
    own = await client.patch("/api/v1/config/devices/dev-01", json={"set": {"LOG_LEVEL": "debug"}})
    assert own.status_code == 200, own.text
    ids = [d.device_id for d in fleet.devices]
    created = await client.post(
        "/api/v1/rollouts",
        json={"bundle": BUNDLE, "version": "2.0.0", "devices": ids, "waves": "100%", "soak": "0s"},
    )
    assert created.status_code == 201, created.text
    await fleet.until(anon, status_is(client, created.json()["id"], "completed"), "completion")
    for device_id in ids:
        shown = (await client.get(f"/api/v1/devices/{device_id}")).json()["desired_state"]
        assert shown["bundle"]["version"] == "2.0.0"
        layers = {(x["scope"], x["name"]) for x in shown["config"]["layers"]}
        mine = {("device", "dev-01")} if device_id == "dev-01" else set()
        assert layers == {("tenant", ""), *mine}
        # People see that a secret is there, never its value.
        assert shown["config"]["secrets"] == {"KEY": "(secret)"}
        effective = (await client.get(f"/api/v1/devices/{device_id}/config")).json()
        assert effective["digest"] == shown["config"]["digest"]
        wanted = "debug" if device_id == "dev-01" else "info"
        assert [i["value"] for i in effective["items"]] == [None, wanted]
