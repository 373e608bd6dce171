"""The in-process instruments of one app: requests, ingest batches, heartbeat gaps, deliveries.

Each app has its own `CollectorRegistry`, not prometheus_client's global one, so several apps
in one process (tests, the bench) never share or clash over a metric.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

# Seconds; long polls (watch, event streams) land in the top buckets, as they should.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000)
# Seconds between a device's consecutive syncs: around the sync interval when all is well,
# minutes after an outage.
GAP_BUCKETS = (1, 2, 5, 10, 15, 20, 30, 45, 60, 120, 300, 900, 3600, 21600, 86400)


def status_class(status: int) -> str:
    """`2xx`, `4xx`, ...: the status label, bounded to five values."""
    return f"{status // 100}xx"


class Meters:
    """Counters and histograms updated where things happen, cheaply (no I/O)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "signalbeam_http_requests",
            "HTTP requests answered, by route template, method and status class.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "signalbeam_http_request_duration_seconds",
            "Seconds from a request's arrival to the end of its answer, by route template.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "signalbeam_ingest_batch_size",
            "Syncs committed together in one ingest transaction (group commit).",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.heartbeat_gap = Histogram(
            "signalbeam_heartbeat_gap_seconds",
            "Seconds between a device's consecutive syncs, observed when the later one is stored.",
            buckets=GAP_BUCKETS,
            registry=self.registry,
        )
        self.deliveries = Counter(
            "signalbeam_notification_delivery_attempts",
            "Attempts to send a notification, by tenant, notifier kind and outcome (sent, failed).",
            ["tenant_id", "kind", "outcome"],
            registry=self.registry,
        )

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        self.requests.labels(route, method, status_class(status)).inc()
        self.latency.labels(route, method).observe(seconds)

    def batch(self, size: int, gaps: list[float]) -> None:
        """Record one committed ingest batch and the heartbeat gaps it closed."""
        self.batch_size.observe(size)
        for gap in gaps:
            self.heartbeat_gap.observe(gap)

    def delivery(self, tenant_id: int, kind: str, sent: bool) -> None:
        """Count one notification attempt."""
        self.deliveries.labels(str(tenant_id), kind, "sent" if sent else "failed").inc()
