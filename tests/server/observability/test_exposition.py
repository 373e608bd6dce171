"""The exposition's names and labels, and the caps that keep its series bounded."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from signalbeam.server.observability.device_families import reading_families
from signalbeam.server.observability.exposition import exposition
from signalbeam.server.observability.fleet_families import VERSION_LIMIT, fleet_families
from signalbeam.server.observability.fleet_snapshot import DeviceReading, FleetSnapshot
from signalbeam.server.observability.metrics import Metrics
from signalbeam.server.services.bus import EventBus
from signalbeam.server.workers.ingest import Ingestor

DASHBOARD = Path(__file__).parents[3] / "deploy" / "grafana" / "signalbeam.json"


class Fixed(Collector):
    """A collector of given families, as the app's collectors would yield them."""

    def __init__(self, snapshot: FleetSnapshot, device_limit: int) -> None:
        self.snapshot = snapshot
        self.device_limit = device_limit

    def collect(self) -> list[Metric]:
        found = list(fleet_families(self.snapshot))
        return found + list(reading_families(self.snapshot, self.device_limit))


def scrape(
    snapshot: FleetSnapshot, tenant_id: int | None = None, device_limit: int = 2
) -> dict[str, list[tuple[dict[str, str], float]]]:
    registry = CollectorRegistry()
    registry.register(Fixed(snapshot, device_limit))
    text = exposition(registry, tenant_id).decode()
    return {
        family.name: [(sample.labels, sample.value) for sample in family.samples]
        for family in text_string_to_metric_families(text)
    }


def test_bundle_versions_past_the_cap_are_counted_as_other() -> None:
    # 60 versions in tenant 1, one device each, plus a big one in tenant 2.
    versions = [(1, "kiosk", f"1.0.{i}", 1) for i in range(60)] + [(2, "gw", "2.0.0", 500)]
    found = scrape(FleetSnapshot(tenants={1: "default", 2: "acme"}, versions=versions))
    series = found["signalbeam_devices_by_bundle_version"]
    assert len(series) == VERSION_LIMIT + 1
    assert ({"tenant_id": "2", "bundle": "gw", "version": "2.0.0"}, 500) in series
    other = [value for labels, value in series if labels["version"] == "other"]
    # 49 versions of tenant 1 kept, 11 left: their devices still count, under other.
    assert other == [11]
    assert sum(value for _, value in series) == 560


def test_presence_and_firing_incidents_show_zeros_per_tenant() -> None:
    snapshot = FleetSnapshot(
        tenants={1: "default"},
        presence=[(1, "online", 3)],
        incidents=[(1, "firing", "critical", 2)],
    )
    found = scrape(snapshot)
    assert sorted(found["signalbeam_devices"], key=str) == sorted(
        [
            ({"tenant_id": "1", "presence": "online"}, 3),
            ({"tenant_id": "1", "presence": "offline"}, 0),
            ({"tenant_id": "1", "presence": "new"}, 0),
        ],
        key=str,
    )
    firing = {labels["severity"]: value for labels, value in found["signalbeam_incidents_open"]}
    assert firing == {"critical": 2, "warning": 0, "info": 0}
    assert found["signalbeam_tenant_info"] == [({"tenant_id": "1", "tenant": "default"}, 1)]


def test_device_readings_stop_at_the_limit_and_say_how_many_were_left_out() -> None:
    readings = [DeviceReading(1, f"kiosk-{i}", 10.0 + i, 50.0, None) for i in range(3)]
    snapshot = FleetSnapshot(tenants={1: "default"}, presence=[(1, "online", 5)], readings=readings)
    found = scrape(snapshot)
    cpu = found["signalbeam_device_cpu_percent"]
    assert cpu == [
        ({"tenant_id": "1", "device_id": "kiosk-0"}, 10.0),
        ({"tenant_id": "1", "device_id": "kiosk-1"}, 11.0),
    ]
    assert found["signalbeam_device_disk_percent"] == []  # not reported, not invented
    assert found["signalbeam_device_metrics_omitted"] == [({"tenant_id": "1"}, 3)]


def test_a_tenant_scrape_drops_other_tenants_series() -> None:
    snapshot = FleetSnapshot(
        tenants={1: "default", 2: "acme"},
        presence=[(1, "online", 3), (2, "online", 7)],
    )
    found = scrape(snapshot, tenant_id=2)
    assert {labels["tenant_id"] for labels, _ in found["signalbeam_devices"]} == {"2"}
    assert found["signalbeam_tenant_info"] == [({"tenant_id": "2", "tenant": "acme"}, 1)]
    assert found["signalbeam_device_metrics_omitted"] == [({"tenant_id": "2"}, 7)]


def test_the_grafana_dashboard_queries_only_metrics_the_server_exports() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    queried = {
        re.sub(r"_(bucket|total|count|sum)$", "", name)
        for expr in exprs
        for name in re.findall(r"signalbeam_[a-z_]+", expr)
    }
    # The app's own registry, before any scrape has read the database.
    sessions: async_sessionmaker[AsyncSession] = async_sessionmaker()
    metrics = Metrics(sessions, Ingestor(sessions, EventBus()), device_limit=1)
    text = exposition(metrics.meters.registry, None).decode()
    exported = {family.name for family in text_string_to_metric_families(text)}
    assert queried <= exported, queried - exported
    assert len(queried) >= 12
