"""Putting rendered config where units read it: before a start, or as new files and a signal."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from pathlib import Path

from signalbeam.agent import config_files
from signalbeam.agent.config_layers import Config
from signalbeam.agent.config_render import Effective, MissingKey, effective_units
from signalbeam.agent.drivers import Drivers
from signalbeam.agent.failure_log import UnitFailed
from signalbeam.agent.spec import AppSpec, BundleSpec
from signalbeam.agent.units import UnitError

log = logging.getLogger(__name__)


class ConfigFiles:
    """Writes units' rendered files: in an app's directory, or under `rendered` for containers."""

    def __init__(self, rendered: Path, drivers: Drivers) -> None:
        self.rendered = rendered
        self.drivers = drivers

    async def place(self, unit: Effective) -> None:
        """Write a unit's rendered files where it reads them, before it starts or is signalled."""
        if unit.rendered is None or not unit.rendered.files:
            return
        if isinstance(unit.spec, AppSpec):
            # Into the unpacked artifact, which must exist first (a restart may need it again).
            await self.drivers.apps.prepare(unit.spec)
            directory, private = self.drivers.app_dir(unit.spec), False
        else:
            assert unit.files_dir is not None
            await asyncio.to_thread(config_files.prepare_root, self.rendered)
            directory, private = unit.files_dir, True
        in_place = unit.reload_signal is not None and not isinstance(unit.spec, AppSpec)
        await asyncio.to_thread(
            config_files.write, directory, unit.rendered.files, in_place=in_place, private=private
        )

    async def reload(self, units: Iterable[Effective]) -> None:
        """Hand new files to running units that take them by a signal instead of a restart."""
        for unit in units:
            signal = unit.reload_signal
            if signal is None or unit.rendered is None:
                continue
            if isinstance(unit.spec, AppSpec):
                directory = self.drivers.app_dir(unit.spec)
            else:
                assert unit.files_dir is not None
                directory = unit.files_dir
            if not await asyncio.to_thread(config_files.differs, directory, unit.rendered.files):
                continue
            log.info("%s %s: new config files; sending %s", unit.unit.kind, unit.unit.name, signal)
            try:
                await self.place(unit)
                await self.drivers.of(unit.unit.kind).signal(unit.unit.name, signal)
            except UnitError as err:
                raise UnitFailed(unit.unit, err) from err

    async def gc(self, kept: list[tuple[BundleSpec, Config | None]]) -> None:
        """Drop containers' rendered files that neither this version nor the one before uses."""
        keep: set[Path] = set()
        for bundle, config in kept:
            try:
                units = effective_units(bundle, config, self.rendered)
            except MissingKey:
                continue
            keep |= {u.files_dir for u in units if u.files_dir is not None}
        try:
            await asyncio.to_thread(config_files.gc, self.rendered, keep)
        except OSError as err:
            log.warning("could not clean up old config files: %s", err)
