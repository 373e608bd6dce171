"""A real Prometheus scrapes a real `signalbeam server` and answers queries about its fleet."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.components import free_port, need
from tests.conftest import LiveServer, start_server, stop_server
from tests.helpers import eventually, new_device


@pytest.fixture
def prometheus_binary() -> str:
    path = shutil.which("prometheus")
    need(path is not None, "prometheus is not installed (Debian package prometheus)")
    assert path is not None
    return path


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[LiveServer, int]]:
    metrics_port = free_port()
    live = start_server(tmp_path / "server", ["--metrics-listen", f"127.0.0.1:{metrics_port}"])
    yield live, metrics_port
    stop_server(live)


def scrape_config(live: LiveServer, metrics_port: int) -> dict[str, object]:
    """One job through the main listener with the admin's token, one through the loopback one."""
    main = live.url.removeprefix("http://")
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [
            {
                "job_name": "signalbeam",
                "authorization": {"credentials": live.admin_token},
                "static_configs": [{"targets": [main]}],
            },
            {
                "job_name": "signalbeam-loopback",
                "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}],
            },
        ],
    }


@pytest.fixture
def prometheus(
    prometheus_binary: str, server: tuple[LiveServer, int], tmp_path: Path
) -> Iterator[str]:
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(*server)))
    port = free_port()
    with (tmp_path / "prometheus.log").open("w") as log:
        process = subprocess.Popen(
            [
                prometheus_binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=30)


async def query(prometheus: str, promql: str) -> float | None:
    """The single value of an instant query, or None while Prometheus has none (or is starting)."""
    try:
        async with httpx.AsyncClient(base_url=prometheus, timeout=5) as http:
            answer = await http.get("/api/v1/query", params={"query": promql})
    except httpx.TransportError:
        return None
    result = answer.json()["data"]["result"] if answer.status_code == 200 else []
    return float(result[0]["value"][1]) if len(result) == 1 else None


async def test_prometheus_sees_devices_online_and_requests(
    server: tuple[LiveServer, int], prometheus: str
) -> None:
    live, _ = server
    headers = {"Authorization": f"Bearer {live.admin_token}"}
    async with (
        httpx.AsyncClient(base_url=live.url, headers=headers, timeout=30) as client,
        httpx.AsyncClient(base_url=live.url, timeout=30) as anon,
    ):
        await new_device(client, anon, "kiosk-1")
        await new_device(client, anon, "kiosk-2")

    async def online(job: str) -> float | None:
        found = await query(prometheus, f'signalbeam_devices{{job="{job}",presence="online"}}')
        return found if found == 2 else None

    assert await eventually(lambda: online("signalbeam"), "2 devices online in Prometheus", 60)
    assert await eventually(lambda: online("signalbeam-loopback"), "the loopback job", 30)
    syncs = 'sum(signalbeam_http_requests_total{job="signalbeam",route="/api/device/v1/sync"})'
    assert await query(prometheus, syncs) == 2
