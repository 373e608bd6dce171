"""Start-first replacement of containers: the device network, and handing a unit's name over.

Every bundle container joins the device's own network (`sb-DEVICE`, DNS on) under its unit
name as a network alias, so other containers reach `web` whichever copy of it runs. A
container replaced start-first gets its new copy started beside the old one under a
temporary name, with the same alias: for a while DNS answers with both. Once the new copy
is healthy the old one leaves DNS (`leave_dns`), answers what is still on its way to it for
`DRAIN_SECONDS`, stops and goes; then the new copy takes the unit's container name, so
the next update finds the usual name.

Measured on Podman 4.3 (aardvark-dns 1.4), which shaped this: DNS answers list the old
copy first, so clients that take the first address stay on it until it leaves DNS; a plain
disconnect left requests in flight to it hanging; and renaming containers while two of
them shared the alias left the alias unresolvable, so the rename waits until one is left.
"""

from __future__ import annotations

import logging
from typing import Any

from signalbeam.agent.engine_api import EngineClient, EngineError

log = logging.getLogger(__name__)

STAGED_SUFFIX = "-next"
# Long enough for a connection attempt lost while the old copy rejoined the network to be
# sent again (TCP resends a SYN after 1 s) and answered.
DRAIN_SECONDS = 2.0


def attach_body(body: dict[str, Any], network: str, alias: str) -> dict[str, Any]:
    """A create body that joins `network` with `alias` (the unit name) as its DNS name."""
    return {
        **body,
        "HostConfig": {**body["HostConfig"], "NetworkMode": network},
        "NetworkingConfig": {"EndpointsConfig": {network: {"Aliases": [alias]}}},
    }


async def ensure_network(engine: EngineClient, name: str, labels: dict[str, str]) -> None:
    """Create the device network unless it exists (Docker makes its DNS work by default)."""
    if await engine.call("GET", f"/networks/{name}", ok_missing=True) is not None:
        return
    try:
        await engine.call(
            "POST",
            "/networks/create",
            body={"Name": name, "Labels": labels, "CheckDuplicate": True},
        )
    except EngineError as err:
        # Another call created it meanwhile (Docker: 409; Podman: 500 "already used").
        if err.status == 409 or "already" in err.message:
            return
        raise
    log.info("created the device network %s", name)


async def leave_dns(engine: EngineClient, ident: str, network: str) -> None:
    """Take container `ident` out of `network`'s DNS but keep its address answering.

    Podman 4.3 cannot drop an alias alone, and a disconnect alone would leave requests
    already on their way to this copy hanging. So the copy leaves the network and joins it
    again at once with the same address and MAC but no alias: lookups of the unit name
    give only the new copy, and connections to the old one go on (TCP resends what the
    moment in between lost).
    """
    info = await engine.call("GET", f"/containers/{ident}/json")
    endpoint = ((info.get("NetworkSettings") or {}).get("Networks") or {}).get(network)
    if endpoint is None:
        return  # started by an agent from before the device network: not in its DNS at all
    # Podman answers these two with a plain "OK", not JSON.
    await engine.raw(
        "POST", f"/networks/{network}/disconnect", body={"Container": ident, "Force": True}
    )
    address, mac = endpoint.get("IPAddress"), endpoint.get("MacAddress")
    if not address:
        return
    config: dict[str, Any] = {"IPAMConfig": {"IPv4Address": address}}
    if mac:
        config["MacAddress"] = mac
    try:
        await engine.raw(
            "POST",
            f"/networks/{network}/connect",
            body={"Container": ident, "EndpointConfig": config},
        )
    except EngineError as err:
        # Out of DNS either way; only requests still open on it are cut.
        log.warning(
            "container %s could not stay reachable while it drains: %s", ident[:12], err.message
        )
