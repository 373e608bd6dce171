"""The fleet snapshot as Prometheus metric families, with a hard cap on label values."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

from prometheus_client.core import GaugeMetricFamily, Metric

from signalbeam.domain.alerts import IncidentState, Severity
from signalbeam.domain.model import Presence
from signalbeam.server.observability.fleet_snapshot import FleetSnapshot, Row

# The most common bundle versions (over every tenant) get their own series; the rest of each
# tenant's devices are counted under bundle="other", version="other".
VERSION_LIMIT = 50
STATUS_LIMIT = 20
OTHER = "other"
PRESENCES = (Presence.NEW, Presence.ONLINE, Presence.OFFLINE)


def capped(rows: list[Row], limit: int) -> list[Row]:
    """The `limit` largest rows (count last, tenant first); the rest summed per tenant as other."""
    ordered = sorted(rows, key=lambda row: (-row[-1], [str(part) for part in row[:-1]]))
    kept = ordered[:limit]
    rest: dict[int, int] = defaultdict(int)
    for row in ordered[limit:]:
        rest[row[0]] += row[-1]
    width = len(rows[0]) - 2 if rows else 0
    return kept + [(tenant, *([OTHER] * width), n) for tenant, n in sorted(rest.items())]


def _gauge(name: str, doc: str, labels: list[str], rows: list[Row]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=["tenant_id", *labels])
    for *values, count in rows:
        family.add_metric([str(value) for value in values], count)
    return family


def _with_zeros(rows: list[Row], tenants: list[int], keys: Sequence[tuple[str, ...]]) -> list[Row]:
    """Rows plus a 0 for every tenant and key absent, so a graph shows 0 rather than nothing."""
    present = {tuple(str(part) for part in row[:-1]) for row in rows}
    zeros = [
        (tenant, *key, 0)
        for tenant in tenants
        for key in keys
        if (str(tenant), *key) not in present
    ]
    return rows + zeros


def device_families(snapshot: FleetSnapshot) -> Iterator[Metric]:
    """Devices by presence, reported status and bundle version."""
    tenants = sorted(snapshot.tenants)
    presence = _with_zeros(snapshot.presence, tenants, [(p.value,) for p in PRESENCES])
    yield _gauge("signalbeam_devices", "Enrolled devices by presence.", ["presence"], presence)
    yield _gauge(
        "signalbeam_devices_by_status",
        f"Devices by reported status (the {STATUS_LIMIT} largest; the rest as other).",
        ["status"],
        capped(snapshot.status, STATUS_LIMIT),
    )
    yield _gauge(
        "signalbeam_devices_by_bundle_version",
        f"Devices by the bundle version they report running (the {VERSION_LIMIT} largest"
        " over all tenants; the rest of each tenant's as bundle and version other).",
        ["bundle", "version"],
        capped(snapshot.versions, VERSION_LIMIT),
    )


def fleet_families(snapshot: FleetSnapshot) -> Iterator[Metric]:
    """Every state gauge of the fleet, labelled by tenant_id."""
    info = GaugeMetricFamily(
        "signalbeam_tenant_info", "A tenant's slug, for joins.", labels=["tenant_id", "tenant"]
    )
    for tenant_id, slug in sorted(snapshot.tenants.items()):
        info.add_metric([str(tenant_id), slug], 1)
    yield info
    yield from device_families(snapshot)
    firing = [(IncidentState.FIRING.value, s.value) for s in Severity]
    yield _gauge(
        "signalbeam_incidents_open",
        "Incidents not resolved, by state (firing, acknowledged) and severity.",
        ["state", "severity"],
        _with_zeros(snapshot.incidents, sorted(snapshot.tenants), firing),
    )
    yield _gauge(
        "signalbeam_rollouts",
        "Rollouts by status: active ones and their outcomes (completed, rolled back, ...).",
        ["status"],
        snapshot.rollouts,
    )
    yield _gauge(
        "signalbeam_notification_deliveries",
        "Notification deliveries by state (pending, delivered, dead, silenced).",
        ["state"],
        snapshot.deliveries,
    )
