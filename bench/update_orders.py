"""Start-first against stop-first with a real container: failed requests and seconds per update.

Starts its own `podman system service` (runc, the ulimits the sandbox allows), imports a
busybox image, and runs the agent's own bundle reconciler in-process against it (no server:
what is measured is the device side). A client container on the device network looks the
unit name up before every request, as in tests/agent/test_start_first_containers.py, while
the unit is updated `--updates` times in each order. Usage:
python -m bench.update_orders [--updates 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

CONF = '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n'
CONF += '[engine]\nruntime = "runc"\n'
IMAGE = "localhost/signalbeam-bench-busybox:latest"
PODMAN = shutil.which("podman") or "/usr/bin/podman"
OWNER = "bench-orders"
CLIENT = "sb-bench-orders-client"
LOOP = r"""
dns=$(busybox sed -n 's/^nameserver //p' /etc/resolv.conf | busybox head -n 1)
lookup() {
  busybox timeout 1 busybox nslookup -type=a web $dns 2>/dev/null | busybox sed -n 's/^Address: \([0-9.]*\)$/\1/p' | busybox head -n 1
}
while true; do
  tries=0
  while ip=$(lookup); [ -z "$ip" ] && [ $tries -lt 60 ]; do tries=$((tries+1)); busybox usleep 100000; done
  if busybox timeout 5 wget -q -O /dev/null "http://$ip:8080/version" 2>/dev/null && [ -n "$ip" ]; then
    echo ok
  else
    echo fail
  fi
  busybox usleep 20000
done
"""


def bundle(version: str, order: str) -> dict[str, Any]:
    serve = f"echo {version} > /www/version; trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait"
    health = ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/version"]
    unit = {
        "name": "web",
        "image": IMAGE,
        "command": ["sh", "-c", serve],
        "update_order": order,
        "health": {"exec": health, "timeout": "10s", "interval": "200ms"},
    }
    return {"name": "bench", "version": version, "containers": [unit]}


def podman(env: dict[str, str], *args: str) -> str:
    command = [PODMAN, *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    return done.stdout


def image(where: Path, env: dict[str, str]) -> None:
    root = where / "rootfs"
    for part in ("bin", "www", "tmp"):
        (root / part).mkdir(parents=True)
    shutil.copy2("/bin/busybox", root / "bin" / "busybox")
    for applet in ("sh", "httpd", "wget", "echo", "sleep"):
        (root / "bin" / applet).symlink_to("busybox")
    with tarfile.open(where / "rootfs.tar", "w") as archive:
        archive.add(root, arcname=".")
    subprocess.run(  # noqa: S603 - our own command line
        [PODMAN, "import", "--change", 'CMD ["/bin/sh"]', str(where / "rootfs.tar"), IMAGE],
        env=env,
        capture_output=True,
        check=True,
    )


async def measure(socket: str, state: Path, env: dict[str, str], updates: int) -> dict[str, Any]:
    from signalbeam.agent.apps import AppDriver
    from signalbeam.agent.bundles import BundleReconciler, Drivers
    from signalbeam.agent.containers import ContainerDriver, device_network
    from signalbeam.agent.spec import parse_bundle

    drivers = Drivers(ContainerDriver(OWNER, socket), AppDriver(state / "apps", OWNER))
    reconciler = BundleReconciler(state, drivers)
    results: dict[str, Any] = {}
    version = 0
    try:
        await reconciler.converge(parse_bundle(bundle("1.0.0", "start-first")))
        podman(env, "rm", "-f", "-t", "0", CLIENT)
        network = device_network(OWNER)
        podman(env, "run", "-d", "--name", CLIENT, "--network", network, IMAGE, "sh", "-c", LOOP)
        for order in ("stop-first", "start-first"):
            seconds, failed, made = [], 0, 0
            for _ in range(updates):
                version += 1
                before = podman(env, "logs", CLIENT).split()
                started = time.monotonic()
                await reconciler.converge(parse_bundle(bundle(f"1.{version}.0", order)))
                seconds.append(round(time.monotonic() - started, 2))
                await asyncio.sleep(3)  # let requests made after the switch land too
                after = podman(env, "logs", CLIENT).split()[len(before) :]
                failed += after.count("fail")
                made += len(after)
            results[order] = {"update_seconds": seconds, "failed": failed, "requests": made}
    finally:
        podman(env, "rm", "-f", "-t", "0", CLIENT)
        await drivers.close()
    return results


def run(updates: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sb-orders-") as tmp:
        where = Path(tmp)
        (where / "containers.conf").write_text(CONF)
        env = {**os.environ, "CONTAINERS_CONF": str(where / "containers.conf")}
        image(where, env)
        sock = where / "podman.sock"
        service = subprocess.Popen(  # noqa: S603 - our own command line
            [PODMAN, "system", "service", "--time=0", f"unix://{sock}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while not sock.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            results = asyncio.run(measure(f"unix://{sock}", where / "agent", env, updates))
        finally:
            for item in podman(
                env, "ps", "-aq", "--filter", f"label=io.signalbeam.owner={OWNER}"
            ).split():
                podman(env, "rm", "-f", "-t", "0", item)
            podman(env, "network", "rm", "-f", f"sb-{OWNER}")
            service.terminate()
            service.wait(timeout=15)
    stop, start = results["stop-first"], results["start-first"]
    extra = sum(start["update_seconds"]) / updates - sum(stop["update_seconds"]) / updates
    return {**results, "start_first_extra_seconds": round(extra, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("podman") is None or not Path("/bin/busybox").exists():
        raise SystemExit("update_orders needs podman, runc and busybox-static")
    print(json.dumps(run(args.updates), indent=2))


if __name__ == "__main__":
    main()
