"""The unit drivers a bundle reconciler works through, by kind, with their shared chores."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from signalbeam.agent.spec import AppSpec, ContainerSpec
from signalbeam.agent.units import EngineUnavailable, UnitDriver, UnitError, UnitStatus

log = logging.getLogger(__name__)
AnyDriver = UnitDriver[Any]


class Drivers:
    """The drivers by kind; the container driver is optional (no engine on this device)."""

    def __init__(self, containers: UnitDriver[ContainerSpec], apps: UnitDriver[AppSpec]) -> None:
        self.containers = containers
        self.apps = apps

    def of(self, kind: str) -> AnyDriver:
        return self.containers if kind == "container" else self.apps

    def app_dir(self, spec: AppSpec) -> Path:
        """The directory app `spec` runs in, where its config files go."""
        workdir = getattr(self.apps, "workdir", None)
        if workdir is None:
            raise UnitError(f"app {spec.name} needs config files, which this agent cannot write")
        path: Path = workdir(spec)
        return path

    async def observe(self, *, need_containers: bool) -> list[UnitStatus]:
        """Every managed unit; containers only count when an engine answers."""
        units = list(await self.apps.observe())
        try:
            units += await self.containers.observe()
        except EngineUnavailable as err:
            if need_containers:
                raise UnitError(f"this bundle needs a container engine, but {err.reason}") from err
        return units

    async def gc(self, keep: set[str]) -> None:
        """Drop downloaded and unpacked app versions not in `keep`; a failure costs a log line."""
        gc = getattr(self.apps, "gc", None)
        if gc is None:
            return
        try:
            await gc(keep)
        except (OSError, UnitError) as err:
            log.warning("could not clean up old app versions: %s", err)

    async def abandon(self) -> None:
        """Stop the copies a failed update started beside running ones; a failure is logged."""
        for driver in (self.apps, self.containers):
            try:
                await driver.abandon()
            except UnitError as err:
                log.warning("could not stop the new copies of a failed update: %s", err.reason)

    async def close(self) -> None:
        await asyncio.gather(self.containers.close(), self.apps.close(), return_exceptions=True)
