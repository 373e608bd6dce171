"""The container driver against a real Podman (Docker Engine API) and a real loopback registry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import httpx
import pytest

from signalbeam.agent.containers import ContainerDriver, container_name, create_body, pull_failure
from signalbeam.agent.spec import ContainerSpec, parse_unit, unit_fingerprint
from signalbeam.agent.units import EngineUnavailable, RestartPolicy, UnitError, UnitState
from tests.components import free_port
from tests.engine import Engine, engine

__all__ = ["engine"]

T = TypeVar("T")
FAST = RestartPolicy(base=0.3, cap=2.0, stable_after=30.0)


def web(image: str, port: int, **extra: object) -> ContainerSpec:
    """busybox httpd serving /www on `port`, published on loopback."""
    return parse_unit(
        {
            "name": "web",
            "image": image,
            "command": ["httpd", "-f", "-p", "8080", "-h", "/www"],
            "ports": [f"127.0.0.1:{port}:8080"],
            "env": {"GREETING": "hello"},
            **extra,
        },
        ContainerSpec,
    )


async def eventually(probe: Callable[[], Awaitable[T | None]], what: str, seconds: float = 30) -> T:
    """Poll `probe` until it returns something, or fail naming `what`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = await probe()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
async def driver(engine: Engine, request: pytest.FixtureRequest) -> AsyncIterator[ContainerDriver]:
    owner = f"test-{request.node.name[:30]}"
    engine.remove_owned(owner)
    driver = ContainerDriver(owner, engine.socket, restart=FAST)
    yield driver
    await driver.close()
    engine.remove_owned(owner)


def test_create_body_maps_ports_volumes_env_and_never_lets_the_engine_restart() -> None:
    spec = parse_unit(
        {
            "name": "sensor",
            "image": "registry.example/org/temp:1.2.0",
            "env": {"LOG_LEVEL": "info"},
            "ports": ["8080:8080", "127.0.0.1:9000:90/udp"],
            "volumes": ["/data/temp:/data", "/etc/sensor:/etc/sensor:ro"],
        },
        ContainerSpec,
    )
    body = create_body(spec, {"io.signalbeam.owner": "d1"})
    assert body["ExposedPorts"] == {"8080/tcp": {}, "90/udp": {}}
    assert body["HostConfig"]["PortBindings"] == {
        "8080/tcp": [{"HostIp": "", "HostPort": "8080"}],
        "90/udp": [{"HostIp": "127.0.0.1", "HostPort": "9000"}],
    }
    assert body["HostConfig"]["Binds"] == ["/data/temp:/data", "/etc/sensor:/etc/sensor:ro"]
    assert body["HostConfig"]["RestartPolicy"] == {"Name": "no"}
    assert body["Env"] == ["LOG_LEVEL=info"]
    assert "Cmd" not in body  # the image's own command


def test_container_names_are_per_device_and_engine_safe() -> None:
    assert container_name("pi-07", "web") == "sb-pi-07-web"
    assert container_name("site/a b", "web") == "sb-site-a-b-web"
    assert container_name("pi-07", "web") != container_name("pi-08", "web")


@pytest.mark.parametrize(
    ("message", "reason", "transient"),
    [
        (
            'pinging container registry 127.0.0.1:5999: Get "http://127.0.0.1:5999/v2/": '
            "dial tcp 127.0.0.1:5999: connect: connection refused",
            "image pull failed: registry 127.0.0.1:5999 unreachable (connection refused)",
            True,
        ),
        (
            "reading manifest 9.9.9 in 127.0.0.1:5999/sb/web: manifest unknown",
            "image pull failed: 127.0.0.1:5999/sb/web:9.9.9 not found in registry 127.0.0.1:5999",
            False,
        ),
    ],
)
def test_pull_failures_read_like_advice(message: str, reason: str, transient: bool) -> None:
    failure = pull_failure("127.0.0.1:5999/sb/web:9.9.9", message)
    assert (failure.reason, failure.transient) == (reason, transient)


async def test_pulls_runs_probes_and_removes_a_container(
    engine: Engine, driver: ContainerDriver
) -> None:
    image = engine.image("sb/web", "1.0.0")
    port = free_port()
    spec = web(image, port)
    await driver.prepare(spec)
    assert engine.podman("image", "exists", image, check=False).returncode == 0

    await driver.start(spec, unit_fingerprint(spec), "site@1.0.0")
    [status] = await driver.observe()
    assert (status.kind, status.name, status.state) == ("container", "web", UnitState.RUNNING)
    assert (status.bundle, status.fingerprint, status.image) == (
        "site@1.0.0",
        unit_fingerprint(spec),
        image,
    )
    assert status.image_digest and status.image_digest.startswith("sha256:")

    async def served() -> str | None:
        try:
            async with httpx.AsyncClient() as client:
                answer = await client.get(f"http://127.0.0.1:{port}/health", timeout=1)
        except httpx.HTTPError:
            return None
        return answer.text if answer.status_code == 200 else None

    assert await eventually(served, "the published port to answer") == "ok\n"
    assert await driver.exec("web", ["sh", "-c", "echo $GREETING; exit 7"], 10) == (7, "hello\n")

    await driver.stop("web")
    assert await driver.observe() == []
    assert engine.containers(driver.owner) == []
    await driver.stop("web")  # stopping what is gone is not an error


async def test_an_unreachable_registry_is_named_and_nothing_changes(
    engine: Engine, driver: ContainerDriver
) -> None:
    port = free_port()
    spec = web(f"127.0.0.1:{port}/sb/web:1.0.0", free_port())
    with pytest.raises(UnitError) as caught:
        await driver.prepare(spec)
    assert caught.value.reason == (
        f"image pull failed: registry 127.0.0.1:{port} unreachable (connection refused)"
    )
    assert caught.value.transient
    assert await driver.observe() == []


async def test_a_missing_tag_is_not_found_not_transient(
    engine: Engine, driver: ContainerDriver
) -> None:
    engine.image("sb/web", "1.0.0")
    spec = web(f"{engine.registry}/sb/web:9.9.9", free_port())
    with pytest.raises(UnitError) as caught:
        await driver.prepare(spec)
    assert caught.value.reason.startswith(f"image pull failed: {engine.registry}/sb/web:9.9.9")
    assert not caught.value.transient


async def test_a_crash_loop_is_restarted_with_backoff_and_reported(
    engine: Engine, driver: ContainerDriver
) -> None:
    image = engine.image("sb/web", "1.0.0")
    spec = parse_unit(
        {"name": "crash", "image": image, "command": ["sh", "-c", "echo boom >&2; exit 3"]},
        ContainerSpec,
    )
    await driver.prepare(spec)
    await driver.start(spec, unit_fingerprint(spec), "site@1.0.0")

    async def restarted_twice() -> bool:
        [status] = await driver.observe()
        return status.restart_count >= 2

    await eventually(restarted_twice, "two restarts")
    [status] = await driver.observe()
    assert status.state in (UnitState.RESTARTING, UnitState.EXITED)
    assert status.last_error == "exited with code 3"
    assert "boom" in await driver.logs("crash")
    # The engine itself never restarts it (policy "no"): only the agent, with backoff.
    inspected = engine.podman(
        "inspect",
        "--format",
        "{{.HostConfig.RestartPolicy.Name}}",
        container_name(driver.owner, "crash"),
    )
    assert inspected.stdout.strip() in ("", "no")


async def test_a_restart_stops_and_starts_the_same_container_once(
    engine: Engine, driver: ContainerDriver
) -> None:
    image = engine.image("sb/web", "1.0.0")
    spec = web(image, free_port())
    await driver.prepare(spec)
    await driver.start(spec, unit_fingerprint(spec), "site@1.0.0")
    [before] = await driver.observe()
    [created] = engine.containers(driver.owner)
    await driver.restart_unit("web")
    [after] = await driver.observe()
    assert (after.state, after.restart_count, after.fingerprint) == (
        UnitState.RUNNING,
        1,
        before.fingerprint,
    )
    assert after.since is not None and before.since is not None and after.since > before.since
    # The same container (not a new one), and self-healing did not start it a second time.
    [container] = engine.containers(driver.owner)
    assert container["Id"] == created["Id"]
    assert (await driver.observe())[0].restart_count == 1
    with pytest.raises(UnitError, match="container db is not managed by this agent"):
        await driver.restart_unit("db")


async def test_never_touches_containers_it_does_not_own(
    engine: Engine, driver: ContainerDriver
) -> None:
    image = engine.image("sb/web", "1.0.0")
    await driver.prepare(web(image, free_port()))
    foreign = container_name(driver.owner, "web")
    engine.podman("create", "--name", foreign, image, "sleep", "600")
    try:
        assert await driver.observe() == []
        await driver.stop("web")
        assert engine.podman("container", "exists", foreign, check=False).returncode == 0
        spec = web(image, free_port())
        with pytest.raises(UnitError, match="is not managed by SignalBeam"):
            await driver.start(spec, unit_fingerprint(spec), "site@1.0.0")
    finally:
        engine.podman("rm", "-f", foreign, check=False)


async def test_no_engine_is_a_plain_reason() -> None:
    driver = ContainerDriver("device-x", "unix:///nonexistent/engine.sock")
    try:
        with pytest.raises(EngineUnavailable) as caught:
            await driver.observe()
        assert (
            caught.value.reason == "no container engine socket at unix:///nonexistent/engine.sock"
        )
    finally:
        await driver.close()
