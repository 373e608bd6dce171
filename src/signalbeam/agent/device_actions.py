"""Device actions the control plane asks for over an `action` session: restart a unit, restart
the agent, reboot.

They are not remote access: the device owner's `remote_access` switch does not gate them,
because each does only what the control plane already controls (what the bundle runs, the
agent itself) or what its owner configured (`reboot_command`). Each answers `exit` {code: 0,
detail}; for the agent and the reboot that is sent before they happen, and the server is
given a moment to read it. A refusal raises `SessionRefused` and the runner sends `error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from signalbeam.agent.config import AgentSettings
from signalbeam.agent.session_channel import Channel, SessionRefused
from signalbeam.protocol.sessions import REBOOT, RESTART, RESTART_AGENT

log = logging.getLogger(__name__)
# How long the server has to read the answer and close before the agent or device goes.
GOODBYE_SECONDS = 5.0
# A reboot command that fails says so quickly (`systemctl reboot` queues the job and exits 0);
# one still running after this long is taken to be rebooting.
REBOOT_COMMAND_SECONDS = 10.0


@dataclass
class DeviceActions:
    """What the actions act on: the settings, the bundle's drivers, the agent's restart."""

    settings: AgentSettings
    units: Callable[[], dict[str, str]]  # unit name -> "app" or "container", as reported
    drivers: Any = None  # the reconciler's drivers (`bundles.Drivers`), if it has any
    restart_agent: Callable[[], None] | None = None

    async def run(self, channel: Channel, opened: dict[str, Any]) -> None:
        """Carry out the action the open frame names and answer it."""
        action = opened.get("action")
        if action == RESTART:
            detail = await self.restart(str(opened.get("unit") or ""))
            await channel.exit(0, detail=detail)
        elif action == RESTART_AGENT:
            await self.agent_goodbye(channel)
        elif action == REBOOT:
            await self.reboot(channel)
        else:
            raise SessionRefused(f"this agent does not know the action {action!r}; update it")

    async def restart(self, unit: str) -> str:
        """Stop the unit and start it again, through the driver that runs it."""
        units = self.units()
        kind = units.get(unit)
        if kind is None or self.drivers is None:
            known = ", ".join(sorted(units)) or "none"
            raise SessionRefused(f"no unit {unit!r} on this device; units: {known}")
        await self.drivers.of(kind).restart_unit(unit)
        log.info("%s %s restarted, as the control plane asked", kind, unit)
        return f"restarted {kind} {unit}"

    async def agent_goodbye(self, channel: Channel) -> None:
        """Answer, let the server read it, then have the agent stop and start again."""
        if self.restart_agent is None:
            raise SessionRefused("this agent cannot restart itself here (not run as a service)")
        await channel.exit(0, detail="restarting the agent")
        await _goodbye(channel)
        log.info("restarting the agent, as the control plane asked")
        self.restart_agent()

    async def reboot(self, channel: Channel) -> None:
        """Run `reboot_command`; answer once it has not failed."""
        command = self.settings.reboot_command
        try:
            process = await asyncio.create_subprocess_exec(
                *shlex.split(command),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as err:
            raise SessionRefused(self._refusal(f"`{command}` could not run: {err}")) from err
        try:
            output, _ = await asyncio.wait_for(process.communicate(), REBOOT_COMMAND_SECONDS)
        except TimeoutError:
            output = b""  # still running: shutting down, as `shutdown -r now` may
        if process.returncode not in (None, 0):
            said = output.decode(errors="replace").strip().splitlines()
            why = f": {said[-1]}" if said else ""
            raise SessionRefused(
                self._refusal(f"`{command}` failed (exit {process.returncode}){why}")
            )
        log.warning("rebooting (%s), as the control plane asked", command)
        await channel.exit(0, detail=f"rebooting ({command})")
        await _goodbye(channel)

    def _refusal(self, what: str) -> str:
        return (
            f"{what}; the device did not reboot. Set reboot_command in "
            f"{self.settings.config_file} to a command that reboots it"
        )


async def _goodbye(channel: Channel) -> None:
    """Wait (bounded) for the server to close the session: it has read the answer then."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(channel.until_closed(), GOODBYE_SECONDS)
