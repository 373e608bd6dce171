"""The text a scrape gets: every metric, or one tenant's and the server's own."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

TENANT_LABEL = "tenant_id"


class TenantView(Collector):
    """The registry's metrics without other tenants' series (series with no tenant stay)."""

    def __init__(self, registry: CollectorRegistry, tenant_id: int) -> None:
        self._registry = registry
        self._tenant = str(tenant_id)

    def collect(self) -> Iterator[Metric]:
        for family in self._registry.collect():
            family.samples = [
                sample
                for sample in family.samples
                if sample.labels.get(TENANT_LABEL, self._tenant) == self._tenant
            ]
            yield family


def exposition(registry: CollectorRegistry, tenant_id: int | None) -> bytes:
    """The text format for everyone (`tenant_id` None) or for one tenant's token."""
    if tenant_id is None:
        return generate_latest(registry)
    view = CollectorRegistry(auto_describe=False)
    view.register(TenantView(registry, tenant_id))
    return generate_latest(view)
