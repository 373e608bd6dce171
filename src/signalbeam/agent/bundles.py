"""The bundle reconciler: run the desired bundle and config, health-gated, and roll back on its own.

Each new desired generation is planned (`domain.reconcile.plan`) against what the drivers
observe, carried out, and gated on every unit's health check. When the new version does
not become healthy the device goes back to its last good version and reports `failed` with
the reason and the last lines the failing unit wrote. Between generations, `report()`
observes the units so a crash loop after a successful update shows up as `degraded`.

Config (`config_layers`, `config_render`) rides along: each unit's fingerprint covers its
rendered env and files, so a config change replaces only the units whose rendered config
changed, or signals a unit that declares a reload signal when only its files did. The last
good version includes its config, so a unit that turns unhealthy with new config gets the
previous config back the same way a failed bundle update goes back.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec

from signalbeam.agent.bundle_report import config_status, degraded, item
from signalbeam.agent.bundle_state import BundleMemory, Failure, Good
from signalbeam.agent.config import AgentSettings
from signalbeam.agent.config_apply import ConfigFiles
from signalbeam.agent.config_layers import Config, ConfigRefused, read_config
from signalbeam.agent.config_render import Effective, MissingKey, effective_units
from signalbeam.agent.drivers import Drivers
from signalbeam.agent.failure_log import UnitFailed, last_lines
from signalbeam.agent.health import HealthGate
from signalbeam.agent.identity import Identity
from signalbeam.agent.spec import BundleSpec, UnitSpec, parse_bundle
from signalbeam.agent.tls import tls_context
from signalbeam.agent.trust import TrustStore
from signalbeam.agent.units import UnitError, UnitStatus
from signalbeam.agent.wire import ReportedState, checked
from signalbeam.domain.errors import InvalidInput
from signalbeam.domain.model import ApplyStatus, DesiredKind
from signalbeam.domain.reconcile import Action, Observed, Step, Wanted, plan

__all__ = ["BundleReconciler", "Desired", "Drivers", "bundle_reconciler", "read_desired"]
log = logging.getLogger(__name__)
RENDERED_DIR = "rendered-config"  # in the state dir: containers' rendered files, 0700


@dataclass(frozen=True)
class Desired:
    """A desired-state document, checked: the bundle, the digest the server gave it, the config."""

    bundle: BundleSpec
    digest: str
    config: Config | None = None

    @property
    def config_digest(self) -> str | None:
        return self.config.digest if self.config else None


def read_desired(spec: dict[str, Any], trust: TrustStore) -> Desired:
    """Decode and verify `{"kind": "bundle", "digest", "bundle", "signatures", "trust", "config"}`.

    Nothing runs unless a key this device trusts signed exactly this manifest, and every
    config layer, secret and the config digest check out (`config_layers.read_config`).
    """
    if spec.get("kind") != "bundle" or not isinstance(spec.get("bundle"), dict):
        raise UnitError("the desired state is not a bundle document; update the agent")
    try:
        bundle = parse_bundle(spec["bundle"])
    except InvalidInput as err:
        raise UnitError(f"the desired bundle is not valid for this agent: {err.detail}") from err
    # The signature first: a manifest edited after signing is a signature failure.
    from signalbeam.protocol.signing import SignatureError

    try:
        trust.check(spec, bundle.canonical(), bundle.ref)
    except SignatureError as err:
        raise UnitError(f"{bundle.ref}: {err.reason}") from err
    digest = bundle.digest()
    if spec.get("digest") != digest:
        raise UnitError(
            f"desired bundle digest mismatch: the server said {spec.get('digest')}, "
            f"the document hashes to {digest}; refusing to run it"
        )
    # The trust statement the bundle check may just have adopted vouches for the layers too.
    return Desired(bundle, digest, read_config(spec.get("config"), trust.current()))


class BundleReconciler:
    """Implements the agent's `Reconciler` for bundle documents."""

    def __init__(self, state_dir: Path, drivers: Drivers) -> None:
        self.drivers = drivers
        self.memory = BundleMemory(state_dir)
        self.trust = TrustStore(state_dir)
        self.rendered = state_dir / RENDERED_DIR
        self.files = ConfigFiles(self.rendered, drivers)
        self._http: httpx.AsyncClient | None = None
        self.generation = 0
        self.desired: Desired | None = None

    def _probes(self) -> httpx.AsyncClient:
        """The client for http health checks, made on first use (an idle agent needs none)."""
        if self._http is None:
            self._http = httpx.AsyncClient(trust_env=False, verify=tls_context())
        return self._http

    async def apply(self, generation: int, spec: dict[str, Any]) -> ReportedState:
        """Converge on the desired bundle; on failure roll back and say why."""
        self.generation = max(0, generation)
        if not spec:
            return await self.report()
        if spec.get("kind") == DesiredKind.DRAINED.value:
            await self._drain()
            return await self.report()
        try:
            desired = read_desired(spec, self.trust)
        except UnitError as err:
            self.memory.failed(_refused(self.generation, err))
            return await self.report()
        self.desired = desired
        if self._older(desired):
            await self._keep_last_good()
            return await self.report()
        failure = self.memory.failure
        if failure is not None and (failure.generation, failure.digest, failure.config_digest) == (
            self.generation,
            desired.digest,
            desired.config_digest,
        ):
            # Tried and rolled back before a restart: running it again would fail again.
            log.info("generation %d failed before; keeping the last good version", generation)
            await self._keep_last_good()
            return await self.report()
        return await self._update(desired)

    def _older(self, desired: Desired) -> bool:
        """True when the config that runs came with a newer generation than `desired`."""
        good = self.memory.last_good
        if good is None or self.generation >= good.generation:
            return False
        if desired.config is None and good.config is None:
            return False
        log.warning(
            "desired generation %d is older than generation %d, whose config runs; keeping that",
            self.generation,
            good.generation,
        )
        return True

    async def _update(self, desired: Desired) -> ReportedState:
        bundle = desired.bundle
        config = f", config {desired.config_digest[:19]}" if desired.config_digest else ""
        log.info("applying %s (%s%s)", bundle.ref, desired.digest[:19], config)
        try:
            await self.converge(bundle, desired.config)
        except UnitError as err:
            await self._roll_back(desired, err)
            return await self.report()
        previous = self.memory.last_good
        self.memory.succeeded(Good(bundle, desired.digest, desired.config, self.generation))
        log.info("%s is running and healthy%s", bundle.ref, config)
        # Keep the files of this version and the one before, so going back is a switch.
        kept = [(bundle, desired.config)]
        if previous:
            kept.append((previous.bundle, previous.config))
        await self.drivers.gc({app.artifact.sha256 for b, _ in kept for app in b.apps})
        await self.files.gc(kept)
        return await self.report()

    async def converge(self, bundle: BundleSpec, config: Config | None = None) -> None:
        """Plan against what runs and carry the plan out; raise `UnitError` on the first failure.

        A key a unit needs and no layer sets fails here, before anything is touched.
        """
        units = {e.unit.name: e for e in effective_units(bundle, config, self.rendered)}
        observed = await self.drivers.observe(need_containers=bool(bundle.containers))
        actions = plan(
            [Wanted(e.unit.kind, e.unit.name, e.fingerprint, e.unit.order) for e in units.values()],
            [Observed(s.kind, s.name, s.fingerprint, s.state.value) for s in observed],
        )
        checks = [a for a in actions if a.step is Step.CHECK]
        first = actions.index(checks[0]) if checks else len(actions)
        for action in actions[:first]:
            await self._do(action, units, bundle.ref)
        started = {a.name for a in actions if a.step is Step.START}
        await self.files.reload([e for e in units.values() if e.unit.name not in started])
        await self._gate([units[a.name].unit for a in checks])
        for action in actions[first + len(checks) :]:
            await self._do(action, units, bundle.ref)

    async def _do(self, action: Action, units: dict[str, Effective], ref: str) -> None:
        log.info("%s: %s", ref, action)
        driver = self.drivers.of(action.kind)
        if action.step is Step.STOP:
            await driver.stop(action.name)
            return
        if action.step is Step.RETIRE:
            await driver.retire(action.name)
            return
        unit = units[action.name]
        if action.step is Step.PREPARE:
            await driver.prepare(unit.spec)
            return
        try:
            await self.files.place(unit)
            await driver.start(unit.spec, unit.fingerprint, ref, action.order)
        except UnitError as err:
            raise UnitFailed(unit.unit, err) from err

    async def _gate(self, units: list[UnitSpec]) -> None:
        gates = [
            HealthGate(unit, self.drivers.of(unit.kind), self._finder(unit), self._probes())
            for unit in units
        ]
        results = await asyncio.gather(*(gate.wait() for gate in gates), return_exceptions=True)
        for unit, result in zip(units, results, strict=True):
            if isinstance(result, UnitError):
                raise UnitFailed(unit, result) from result
            if isinstance(result, BaseException):
                raise result

    def _finder(self, unit: UnitSpec) -> Any:
        driver = self.drivers.of(unit.kind)

        async def find() -> UnitStatus | None:
            return next((s for s in await driver.observe() if s.name == unit.name), None)

        return find

    async def _roll_back(self, desired: Desired, err: UnitError) -> None:
        good = self.memory.last_good
        config_changed = desired.config_digest != (good.config_digest if good else None)
        # Read the failing unit's output now: going back replaces or stops the unit.
        unit = err.unit if isinstance(err, UnitFailed) else None
        output = await last_lines(self.drivers.of(unit.kind), unit.name) if unit else []
        if isinstance(err, MissingKey):
            # Found while rendering, before anything was touched: everything runs as it did.
            reason = f"{err.reason}; nothing was changed"
        else:
            reason = await self._go_back(desired, err, unit, config_changed)
        log.error("%s", reason)
        failure = Failure(
            self.generation,
            desired.digest,
            reason,
            err.transient,
            unit=unit.name if unit else None,
            output=tuple(output),
            config_digest=desired.config_digest,
            config_failed=config_changed or isinstance(err, MissingKey),
        )
        self.memory.failed(failure)

    async def _go_back(
        self, desired: Desired, err: UnitError, unit: UnitSpec | None, config_changed: bool
    ) -> str:
        """Put the last good version (and its config) back; the reason, saying how it went."""
        bundle = desired.bundle
        good = self.memory.last_good
        only_config = good is not None and good.digest == desired.digest and config_changed
        if only_config and unit is not None:
            reason = f"unit {unit.name} turned unhealthy with config {desired.config_digest}: "
            reason += err.reason
        elif only_config:
            reason = f"config {desired.config_digest} could not be applied: {err.reason}"
        else:
            reason = f"{bundle.ref} failed: {err.reason}"
        # New copies started beside running ones go; the old copies never stopped serving.
        await self.drivers.abandon()
        if good is not None and (good.digest, good.config_digest) != (
            desired.digest,
            desired.config_digest,
        ):
            back = "previous config" if only_config else good.bundle.ref
            log.warning("%s; rolling back to %s", reason, back)
            try:
                await self.converge(good.bundle, good.config)
                reason += (
                    "; previous config put back" if only_config else f"; rolled back to {back}"
                )
            except UnitError as again:
                reason += f"; rolling back to {back} failed too: {again.reason}"
        elif good is None:
            # Nothing good to go back to: stop what the failed version started.
            log.warning("%s; no earlier version to go back to, stopping its units", reason)
            await self._stop_all(bundle)
            reason += "; no earlier version to roll back to, so its units were stopped"
        return reason

    async def _drain(self) -> None:
        """Stop every unit this agent manages and forget the bundle: run nothing until told.

        Nothing to verify: stopping runs no code, so a drained document carries no signature.
        """
        log.info("drained: stopping every unit")
        self.desired = None
        problems = []
        for status in await self.drivers.observe(need_containers=False):
            try:
                await self.drivers.of(status.kind).stop(status.name)
            except UnitError as err:
                problems.append(f"{status.kind} {status.name}: {err.reason}")
        if problems:
            reason = f"drain could not stop every unit: {'; '.join(problems)}"
            self.memory.failed(Failure(self.generation, "", reason, retryable=True))
        else:
            self.memory.forget()
            await self.files.gc([])

    async def _stop_all(self, bundle: BundleSpec) -> None:
        for unit in bundle.units:
            try:
                await self.drivers.of(unit.kind).stop(unit.name)
            except UnitError as err:
                log.warning("could not stop %s %s: %s", unit.kind, unit.name, err.reason)

    async def _keep_last_good(self) -> None:
        good = self.memory.last_good
        if good is None:
            return
        try:
            await self.converge(good.bundle, good.config)
        except UnitError as err:
            log.error("the last good version %s does not run: %s", good.bundle.ref, err.reason)

    async def report(self) -> ReportedState:
        """What runs now, and how it compares with the desired bundle."""
        good = self.memory.last_good
        failure = self.memory.failure
        running = good.bundle if good else None
        trouble: str | None = None
        try:
            observed = await self.drivers.observe(need_containers=False)
        except UnitError as err:
            observed, trouble = [], err.reason
        state = checked(
            ReportedState(
                generation=self.generation,
                bundle=running.name if running else None,
                version=running.version if running else None,
                digest=good.digest if good else None,
                items=[item(s) for s in observed],
                config=config_status(good, failure, self.generation),
            )
        )
        if failure is not None and failure.generation == self.generation:
            return msgspec.structs.replace(
                state,
                status=ApplyStatus.FAILED.value,
                reason=failure.reason,
                retryable=failure.retryable,
                failed_unit=failure.unit,
                failure_log=list(failure.output),
            )
        if running is None:
            return state
        problem = trouble or degraded(running, observed)
        status = ApplyStatus.DEGRADED if problem else ApplyStatus.RUNNING
        return msgspec.structs.replace(state, status=status.value, reason=problem)

    async def close(self) -> None:
        """Stop talking to drivers; running units keep running."""
        await self.drivers.close()
        if self._http is not None:
            await self._http.aclose()


def _refused(generation: int, err: UnitError) -> Failure:
    """The failure of a desired document refused before anything ran (bad signature, say)."""
    refused_config = isinstance(err, ConfigRefused)
    return Failure(
        generation,
        "",
        err.reason,
        err.transient,
        config_digest=err.digest if isinstance(err, ConfigRefused) else None,
        config_failed=refused_config,
    )


def bundle_reconciler(settings: AgentSettings, identity: Identity) -> BundleReconciler:
    """The reconciler a real agent runs: containers through the engine API, native apps."""
    from signalbeam.agent.apps import AppDriver
    from signalbeam.agent.artifacts import ControlPlane
    from signalbeam.agent.containers import ContainerDriver

    owner = identity.device_id
    # Artifacts without a URL come from the enrolled server, fetched with this device's credential.
    origin = ControlPlane(identity.server, identity.credential)
    drivers = Drivers(
        ContainerDriver(owner, settings.container_socket),
        AppDriver(settings.state_dir / "apps", owner, origin=origin),
    )
    return BundleReconciler(settings.state_dir, drivers)
