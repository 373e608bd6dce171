"""The container driver's start-first switch on a real Podman, for a unit an older agent started.

Agents from before update orders put containers on the engine's default network. The first
start-first update of such a unit must still take over from it (it is in no DNS to leave).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from signalbeam.agent.containers import ContainerDriver, container_name, device_network
from signalbeam.agent.spec import ContainerSpec, parse_unit
from tests.engine import Engine, engine

__all__ = ["engine"]

OWNER = "test-handover"


@pytest.fixture
async def driver(engine: Engine) -> AsyncIterator[ContainerDriver]:
    engine.remove_owned(OWNER)
    driver = ContainerDriver(OWNER, engine.socket)
    yield driver
    await driver.close()
    engine.remove_owned(OWNER)
    engine.podman("network", "rm", "-f", device_network(OWNER), check=False)


async def test_a_unit_started_by_an_older_agent_is_replaced_start_first(
    engine: Engine, driver: ContainerDriver
) -> None:
    image = engine.image("sb/handover", "1.0.0")
    labels = [f"io.signalbeam.{k}={v}" for k, v in {"owner": OWNER, "unit": "web"}.items()]
    labels += ["io.signalbeam.fingerprint=old", "io.signalbeam.bundle=site@1.0.0"]
    engine.podman("pull", "--tls-verify=false", image)
    run = ["run", "-d", "--name", container_name(OWNER, "web")]
    engine.podman(*run, *(f"--label={label}" for label in labels), image, "sleep", "600")
    spec = parse_unit({"name": "web", "image": image, "command": ["sleep", "600"]}, ContainerSpec)

    await driver.start(spec, "new", "site@1.1.0", "start-first")
    assert len(engine.containers(OWNER)) == 2  # the old copy runs on beside the new one
    await driver.retire("web")

    [container] = engine.containers(OWNER)
    assert container["Names"] == [f"/{container_name(OWNER, 'web')}"]
    labels_now = dict(container["Labels"])  # type: ignore[call-overload]
    assert (labels_now["io.signalbeam.fingerprint"], container["State"]) == ("new", "running")
    [status] = await driver.observe()
    assert (status.fingerprint, status.update_order) == ("new", "start-first")
