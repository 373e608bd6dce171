"""Per-device cpu, memory and disk as metric families: opt-in, and never past a hard cap."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from signalbeam.domain.model import Presence
from signalbeam.server.observability.fleet_snapshot import FleetSnapshot

READINGS = (
    ("cpu", "signalbeam_device_cpu_percent", "A device's latest CPU use, percent."),
    ("memory", "signalbeam_device_memory_percent", "A device's latest memory use, percent."),
    ("disk", "signalbeam_device_disk_percent", "A device's fullest disk, percent."),
)


def reading_families(snapshot: FleetSnapshot, limit: int) -> Iterator[Metric]:
    """Latest readings of up to `limit` online devices, and how many were left out."""
    for attribute, name, doc in READINGS:
        family = GaugeMetricFamily(name, doc, labels=["tenant_id", "device_id"])
        for reading in snapshot.readings[:limit]:
            value = getattr(reading, attribute)
            if value is not None:
                family.add_metric([str(reading.tenant_id), reading.device_id], float(value))
        yield family
    exported = Counter(reading.tenant_id for reading in snapshot.readings[:limit])
    omitted = GaugeMetricFamily(
        "signalbeam_device_metrics_omitted",
        f"Online devices whose readings were not exported: only {limit} are"
        " (metrics_device_limit); the API and dashboard have them all.",
        labels=["tenant_id"],
    )
    for tenant_id, presence, count in snapshot.presence:
        if presence == Presence.ONLINE.value:
            omitted.add_metric([str(tenant_id)], max(0, count - exported[tenant_id]))
    yield omitted
