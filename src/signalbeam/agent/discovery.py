"""Finding a control plane on the local network by mDNS (`_signalbeam._tcp.local.`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from zeroconf import InterfaceChoice, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

log = logging.getLogger(__name__)
SERVICE_TYPE = "_signalbeam._tcp.local."
RESOLVE_MS = 3000


class DiscoveryError(Exception):
    """No single server could be found; the message says what to do instead."""


@dataclass(frozen=True)
class FoundServer:
    """A control plane that answered on mDNS."""

    name: str
    url: str


def _url(info: AsyncServiceInfo) -> str | None:
    raw = (info.properties or {}).get(b"url")
    if raw:
        text = raw.decode("utf-8", "replace").strip().rstrip("/")
        return text if text.startswith(("http://", "https://")) else None
    addresses = info.parsed_scoped_addresses()
    if addresses and info.port:
        host = addresses[0]
        return f"http://[{host}]:{info.port}" if ":" in host else f"http://{host}:{info.port}"
    return None


async def _resolve(zeroconf: Zeroconf, name: str) -> FoundServer | None:
    info = AsyncServiceInfo(SERVICE_TYPE, name)
    if not await info.async_request(zeroconf, RESOLVE_MS):
        return None
    url = _url(info)
    return FoundServer(name=name.removesuffix("." + SERVICE_TYPE), url=url) if url else None


async def _browse(
    zeroconf: Zeroconf, timeout: float, settle: float, wanted: str | None
) -> list[str]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    names: list[str] = []
    first = asyncio.Event()

    def seen(name: str) -> None:
        if name not in names:
            names.append(name)
        # Looking for one server by name, another answering first ends nothing.
        if wanted is None or name == f"{wanted}.{SERVICE_TYPE}":
            first.set()

    def handler(
        zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if state_change is not ServiceStateChange.Removed:
            loop.call_soon_threadsafe(seen, name)

    browser = AsyncServiceBrowser(zeroconf, SERVICE_TYPE, handlers=[handler])
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(first.wait(), timeout)
            # Give other servers a moment to answer, so a choice is never made by accident.
            await asyncio.sleep(settle if wanted is None else 0)
            if wanted is None and len(names) > 1:
                # A choice ends in an error that lists the servers: on a busy network some
                # answer late, so the rest of the time goes to making that list whole.
                await asyncio.sleep(max(0.0, deadline - loop.time()))
    finally:
        await browser.async_cancel()
    return names


async def discover(
    interfaces: list[str] | None = None,
    timeout: float = 5.0,
    settle: float = 1.0,
    wanted: str | None = None,
) -> list[FoundServer]:
    """Every SignalBeam server announcing itself within `timeout` seconds.

    With `wanted`, the browse lasts until the server of that name answers (or the timeout);
    otherwise until `settle` seconds after the first, or, once there is a choice, until the
    timeout, so every server can be listed.
    """
    chosen: list[str] | InterfaceChoice = interfaces or InterfaceChoice.All
    async with contextlib.AsyncExitStack() as stack:
        azc = AsyncZeroconf(interfaces=chosen)
        stack.push_async_callback(azc.async_close)
        names = await _browse(azc.zeroconf, timeout, settle, wanted)
        found = [await _resolve(azc.zeroconf, name) for name in names]
    return [server for server in found if server is not None]


def _by_url(servers: list[FoundServer]) -> list[FoundServer]:
    # One server may be announced twice (by itself and by a proxy, say): that is no choice.
    unique: dict[str, FoundServer] = {}
    for server in servers:
        unique.setdefault(server.url, server)
    return list(unique.values())


async def find_server(
    interfaces: list[str] | None = None, timeout: float = 5.0, name: str | None = None
) -> str:
    """The URL of the one server on the network (or the one called `name`), else an error."""
    try:
        servers = await discover(interfaces, timeout, wanted=name)
    except OSError as err:
        raise DiscoveryError(f"cannot browse mDNS ({err}); pass --server URL instead") from err
    where = ", ".join(interfaces) if interfaces else "all interfaces"
    listed = ", ".join(f"{s.name} ({s.url})" for s in servers)
    servers = _by_url([s for s in servers if name is None or s.name == name])
    if not servers:
        called = f' called "{name}"' if name else ""
        others = f" (found: {listed})" if listed else ""
        raise DiscoveryError(
            f"no SignalBeam server{called} announced itself on {where} within {timeout:g} s"
            f"{others}; pass --server URL"
        )
    if len(servers) > 1:
        raise DiscoveryError(
            f"found {len(servers)} servers: {listed}; pick one with --server URL or --mdns-name NAME"
        )
    log.info("found SignalBeam server %s at %s by mDNS", servers[0].name, servers[0].url)
    return servers[0].url
