"""A real container engine for tests: Podman's Docker-compatible API, runc, a loopback registry.

Images come from Debian's static busybox (nothing can be downloaded here): one root
filesystem with `sh`, `httpd`, `wget`..., imported into Podman and pushed to a
`docker-registry` on loopback under the tags a test asks for. Podman runs with its own
config files (runc; ulimits the sandbox allows; the loopback registry as insecure), so the
machine's /etc/containers is never relied on. See ../shared/notes/container-engine.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.components import free_port, need

BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "sleep", "httpd", "wget", "cat", "echo", "false", "true", "ls", "nc", "ps", "stty")
TOOLS = ("podman", "runc", "docker-registry")
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
"""


@dataclass
class Engine:
    """A running Podman API service and a registry at `registry` (host:port)."""

    socket: str  # unix:///...
    registry: str
    env: dict[str, str]
    base_image: str
    pushed: set[str] = field(default_factory=set)

    def podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["podman", *args], env=self.env, capture_output=True, text=True, check=check
        )

    def image(self, repository: str, tag: str) -> str:
        """`registry/repository:tag`, pushed once from the busybox root filesystem."""
        ref = f"{self.registry}/{repository}:{tag}"
        if ref not in self.pushed:
            self.podman("tag", self.base_image, ref)
            self.podman("push", "--tls-verify=false", ref)
            # Drop the local copy so the agent really pulls it from the registry.
            self.podman("rmi", ref)
            self.pushed.add(ref)
        return ref

    def containers(self, owner: str) -> list[dict[str, object]]:
        """What the engine says runs for `owner`, straight from its API."""
        path = self.socket.removeprefix("unix://")
        with httpx.Client(transport=httpx.HTTPTransport(uds=path)) as client:
            answer = client.get(
                "http://engine/v1.41/containers/json",
                params={
                    "all": "true",
                    "filters": json.dumps({"label": [f"io.signalbeam.owner={owner}"]}),
                },
            )
            answer.raise_for_status()
            found: list[dict[str, object]] = answer.json()
            return found

    def remove_owned(self, owner: str) -> None:
        """Remove the owner's containers, then its device network (the agent makes one)."""
        for item in self.containers(owner):
            self.podman("rm", "-f", str(item["Id"]), check=False)
        label = f"label=io.signalbeam.owner={owner}"
        for network in self.podman("network", "ls", "-q", "--filter", label).stdout.split():
            self.podman("network", "rm", "-f", network, check=False)


def _wait(what: str, ready: object, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        if callable(ready) and ready():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start in {seconds:g}s")


def _registry_up(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _engine_up(socket_path: Path) -> bool:
    if not socket_path.exists():
        return False
    try:
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(socket_path))) as client:
            return client.get("http://engine/_ping", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _rootfs_tar(where: Path) -> Path:
    root = where / "rootfs"
    (root / "bin").mkdir(parents=True)
    (root / "www").mkdir()
    (root / "tmp").mkdir()
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    (root / "www" / "health").write_text("ok\n")
    tar = where / "busybox.tar"
    with tarfile.open(tar, "w") as archive:
        archive.add(root, arcname=".")
    return tar


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """Podman's Docker API on a private socket, and a registry with busybox images."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if not BUSYBOX.exists():
        missing.append("busybox-static")
    need(not missing, f"container tests need {', '.join(missing)} (apt install them)")
    where = tmp_path_factory.mktemp("engine")
    port = free_port()
    registry = f"127.0.0.1:{port}"
    (where / "containers.conf").write_text(CONTAINERS_CONF)
    (where / "registries.conf").write_text(
        f'[[registry]]\nlocation = "{registry}"\ninsecure = true\n'
    )
    (where / "registry.yml").write_text(
        "version: 0.1\n"
        f"storage: {{filesystem: {{rootdirectory: {where / 'registry'}}}}}\n"
        f"http: {{addr: '{registry}'}}\n"
        "log: {level: error}\n"
    )
    env = {
        **os.environ,
        "CONTAINERS_CONF": str(where / "containers.conf"),
        "CONTAINERS_REGISTRIES_CONF": str(where / "registries.conf"),
    }
    socket_path = where / "podman.sock"
    log = (where / "services.log").open("ab")
    services = [
        subprocess.Popen(
            ["docker-registry", "serve", str(where / "registry.yml")], stdout=log, stderr=log
        ),
        subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{socket_path}"],
            env=env,
            stdout=log,
            stderr=log,
        ),
    ]
    try:
        _wait("docker-registry", lambda: _registry_up(port), services[0])
        _wait("podman system service", lambda: _engine_up(socket_path), services[1])
        base = "localhost/signalbeam-test-busybox:latest"
        subprocess.run(
            ["podman", "import", "--change", 'CMD ["/bin/sh"]', str(_rootfs_tar(where)), base],
            env=env,
            capture_output=True,
            check=True,
        )
        yield Engine(f"unix://{socket_path}", registry, env, base)
    finally:
        for service in services:
            service.terminate()
        for service in services:
            try:
                service.wait(timeout=15)
            except subprocess.TimeoutExpired:
                service.kill()
        log.close()
