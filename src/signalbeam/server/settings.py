"""Server settings from flags, `SIGNALBEAM_*` environment variables and defaults."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from signalbeam.server.observability.limits import DEVICE_HARD_LIMIT
from signalbeam.server.observability.listen_address import ListenAddress, parse_listen


class ServerSettings(BaseSettings):
    """Everything `signalbeam server` can be told; defaults suit a single small machine."""

    model_config = SettingsConfigDict(env_prefix="SIGNALBEAM_", extra="ignore")

    data_dir: Path = Path(".signalbeam")
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8420
    public_url: str | None = None
    secret_key: str | None = Field(default=None, repr=False)
    # The AES key that seals config secrets at rest, kept outside the database (and its
    # backups). None: `<data dir>/secrets.key`, created on first start.
    secrets_key_file: Path | None = None
    mdns: bool = True

    sync_interval: timedelta = timedelta(seconds=15)
    offline_after_missed: int = 3
    sweep_interval: timedelta = timedelta(seconds=5)

    metrics_raw_retention: timedelta = timedelta(hours=6)
    metrics_rollup_step: timedelta = timedelta(minutes=5)
    metrics_rollup_retention: timedelta = timedelta(days=30)
    retention_interval: timedelta = timedelta(minutes=5)

    # The rollout engine steps every active rollout this often (and sooner when devices report);
    # one server process runs it, holding a lease in the database that lapses after this long.
    rollout_interval: timedelta = timedelta(seconds=1)
    rollout_lease: timedelta = timedelta(seconds=15)

    max_body_bytes: int = 1_048_576
    # Artifact uploads stream to disk, exempt from max_body_bytes, up to this size each.
    artifact_max_bytes: int = 2 * 1024**3
    ingest_max_batch: int = 500
    # Group-commit writers on PostgreSQL, where one batch collects while another commits.
    # SQLite always has one: it writes one transaction at a time.
    ingest_writers: int = Field(default=2, ge=1)
    # How long a device's credential and desired state stay cached. Changes made in this
    # process evict at once, so the limit only bounds staleness for changes made by another
    # server process sharing the database. None: 10 min on SQLite (one server), 30 s otherwise.
    device_cache_ttl: timedelta | None = None

    # Prometheus: GET /metrics (any API token) on the main listener; with metrics_listen, also
    # token-free on this HOST:PORT, loopback only unless metrics_allow_remote says otherwise.
    metrics_allow_remote: bool = False
    metrics_listen: str | None = None
    # Per-device cpu/memory/disk series for up to this many online devices (0: none).
    metrics_device_limit: int = Field(default=0, ge=0, le=DEVICE_HARD_LIMIT)

    # OpenTelemetry: traces go to this OTLP/HTTP collector (base URL, e.g. http://host:4318);
    # None, the default, loads no tracing at all.
    otlp_endpoint: str | None = None
    # Log lines as human text or as one JSON object each (for log shippers).
    log_format: Literal["text", "json"] = "text"

    @field_validator("otlp_endpoint")
    @classmethod
    def _collector_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        url = urlsplit(value)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(
                f"{value!r} is not an OTLP/HTTP collector URL: give one such as"
                " http://127.0.0.1:4318 (traces are sent to its /v1/traces)"
            )
        return value

    @field_validator("metrics_listen")
    @classmethod
    def _metrics_on_loopback(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        address = parse_listen(value)
        if not address.loopback and not info.data.get("metrics_allow_remote"):
            raise ValueError(
                f"{address} is reachable from other machines and serves metrics without a"
                " token: use a loopback address such as 127.0.0.1:9464, or add"
                " --metrics-allow-remote if a firewall guards it"
            )
        return value

    @property
    def metrics_listen_address(self) -> ListenAddress | None:
        """Where the token-free metrics listener binds, if anywhere."""
        return parse_listen(self.metrics_listen) if self.metrics_listen else None

    @field_validator("offline_after_missed")
    @classmethod
    def _at_least_one(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1 missed interval")
        return value

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite inside the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'signalbeam.db').resolve()}"

    @property
    def resolved_secrets_key_file(self) -> Path:
        """Where the config secrets key lives (see `secrets_key_file`)."""
        return self.secrets_key_file or self.data_dir / "secrets.key"

    @property
    def on_sqlite(self) -> bool:
        """Whether the database is SQLite: one server process owns it and writes one at a time."""
        return self.resolved_database_url.startswith("sqlite")

    @property
    def ingest_writer_count(self) -> int:
        """How many group-commit writers the ingestor runs (see `ingest_writers`)."""
        return 1 if self.on_sqlite else self.ingest_writers

    @property
    def device_cache_seconds(self) -> float:
        """The device cache's time limit (see `device_cache_ttl`)."""
        if self.device_cache_ttl is not None:
            return self.device_cache_ttl.total_seconds()
        # A TTL near the sync interval makes a third or more of all syncs read the database.
        return 600.0 if self.on_sqlite else 30.0

    @property
    def offline_after(self) -> timedelta:
        """How long a device may stay silent before it counts as offline."""
        return self.sync_interval * self.offline_after_missed

    @property
    def base_url(self) -> str:
        """The URL people and devices use to reach this server."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"
