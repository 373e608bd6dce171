"""mDNS advertisement of the control plane (`_signalbeam._tcp.local.`) so agents can find it."""

from __future__ import annotations

import logging
import socket

from zeroconf import IPVersion, ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from signalbeam.server.settings import ServerSettings

log = logging.getLogger(__name__)
SERVICE_TYPE = "_signalbeam._tcp.local."


def _addresses(settings: ServerSettings) -> list[str]:
    # A loopback-only server is advertised on loopback only: nobody else could reach it.
    if settings.host in ("0.0.0.0", "::", ""):  # noqa: S104 - comparing, not binding
        return []
    return [settings.host]


class Advertiser:
    """Registers the service on start and withdraws it on stop; failures only log."""

    def __init__(self, settings: ServerSettings) -> None:
        self._settings = settings
        self._zeroconf: AsyncZeroconf | None = None
        self._info: ServiceInfo | None = None

    def _service_info(self) -> ServiceInfo:
        settings = self._settings
        addresses = _addresses(settings) or ["127.0.0.1"]
        name = f"signalbeam-{socket.gethostname()}-{settings.port}.{SERVICE_TYPE}"
        return ServiceInfo(
            SERVICE_TYPE,
            name,
            port=settings.port,
            properties={"url": settings.base_url, "api": "device/v1"},
            parsed_addresses=addresses,
            server=f"{socket.gethostname()}.local.",
        )

    async def start(self) -> None:
        """Advertise; a machine without multicast gets one log line, not a crash."""
        interfaces = _addresses(self._settings)
        try:
            self._zeroconf = AsyncZeroconf(
                interfaces=interfaces or None,  # type: ignore[arg-type]
                ip_version=IPVersion.V4Only,
            )
            self._info = self._service_info()
            await self._zeroconf.async_register_service(self._info, allow_name_change=True)
            log.info("advertising %s on mDNS as %s", self._settings.base_url, self._info.name)
        except Exception as err:  # zeroconf raises many kinds; none should stop the server
            log.warning("mDNS advertisement failed (%s); agents need --server", err)

    async def stop(self) -> None:
        """Withdraw the advertisement."""
        if self._zeroconf is None:
            return
        try:
            if self._info is not None:
                await self._zeroconf.async_unregister_service(self._info)
            await self._zeroconf.async_close()
        except Exception as err:
            log.warning("mDNS shutdown failed: %s", err)
