"""The bundle reconciler: run the desired bundle, health-gated, and roll back on its own.

Each new desired generation is planned (`domain.reconcile.plan`) against what the drivers
observe, carried out, and gated on every unit's health check. When the new version does
not become healthy the device goes back to its last good version and reports `failed` with
the reason and the last lines the failing unit wrote. Between generations, `report()`
observes the units so a crash loop after a successful update shows up as `degraded`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec

from signalbeam.agent.bundle_state import BundleMemory, Failure
from signalbeam.agent.config import AgentSettings
from signalbeam.agent.failure_log import UnitFailed, last_lines
from signalbeam.agent.health import HealthGate
from signalbeam.agent.identity import Identity
from signalbeam.agent.spec import (
    AppSpec,
    BundleSpec,
    ContainerSpec,
    UnitSpec,
    parse_bundle,
    unit_fingerprint,
)
from signalbeam.agent.tls import tls_context
from signalbeam.agent.trust import TrustStore
from signalbeam.agent.units import EngineUnavailable, UnitDriver, UnitError, UnitState, UnitStatus
from signalbeam.agent.wire import ReportedItem, ReportedState, checked
from signalbeam.domain.errors import InvalidInput
from signalbeam.domain.model import ApplyStatus, DesiredKind
from signalbeam.domain.reconcile import Action, Observed, Step, Wanted, plan

log = logging.getLogger(__name__)
AnyDriver = UnitDriver[Any]


@dataclass(frozen=True)
class Desired:
    """A desired-state document, checked: the bundle and the digest the server gave it."""

    bundle: BundleSpec
    digest: str


def read_desired(spec: dict[str, Any], trust: TrustStore) -> Desired:
    """Decode and verify `{"kind": "bundle", "digest", "bundle", "signatures", "trust"}`.

    Nothing runs unless a key this device trusts signed exactly this manifest.
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
    return Desired(bundle, digest)


class Drivers:
    """The drivers by kind; the container driver is optional (no engine on this device)."""

    def __init__(self, containers: UnitDriver[ContainerSpec], apps: UnitDriver[AppSpec]) -> None:
        self.containers = containers
        self.apps = apps

    def of(self, kind: str) -> AnyDriver:
        return self.containers if kind == "container" else self.apps

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


class BundleReconciler:
    """Implements the agent's `Reconciler` for bundle documents."""

    def __init__(self, state_dir: Path, drivers: Drivers) -> None:
        self.drivers = drivers
        self.memory = BundleMemory(state_dir)
        self.trust = TrustStore(state_dir)
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
            self.memory.failed(Failure(self.generation, "", err.reason, err.transient))
            return await self.report()
        self.desired = desired
        failure = self.memory.failure
        if failure is not None and (failure.generation, failure.digest) == (
            self.generation,
            desired.digest,
        ):
            # Tried and rolled back before a restart: running it again would fail again.
            log.info("generation %d failed before; keeping the last good version", generation)
            await self._keep_last_good()
            return await self.report()
        return await self._update(desired)

    async def _update(self, desired: Desired) -> ReportedState:
        bundle = desired.bundle
        log.info("applying %s (%s)", bundle.ref, desired.digest[:19])
        try:
            await self.converge(bundle)
        except UnitError as err:
            await self._roll_back(desired, err)
            return await self.report()
        previous = self.memory.last_good
        self.memory.succeeded(bundle, desired.digest)
        log.info("%s is running and healthy", bundle.ref)
        # Keep the files of this version and the one before, so going back is a switch.
        kept = [bundle, previous.bundle] if previous else [bundle]
        await self.drivers.gc({app.artifact.sha256 for b in kept for app in b.apps})
        return await self.report()

    async def converge(self, bundle: BundleSpec) -> None:
        """Plan against what runs and carry the plan out; raise `UnitError` on the first failure."""
        units = {unit.name: unit for unit in bundle.units}
        observed = await self.drivers.observe(need_containers=bool(bundle.containers))
        actions = plan(
            [Wanted(u.kind, u.name, unit_fingerprint(u), u.order) for u in bundle.units],
            [Observed(s.kind, s.name, s.fingerprint, s.state.value) for s in observed],
        )
        checks = [a for a in actions if a.step is Step.CHECK]
        first = actions.index(checks[0]) if checks else len(actions)
        for action in actions[:first]:
            await self._do(action, units, bundle.ref)
        await self._gate([units[a.name] for a in checks])
        for action in actions[first + len(checks) :]:
            await self._do(action, units, bundle.ref)

    async def _do(self, action: Action, units: dict[str, UnitSpec], ref: str) -> None:
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
            await driver.prepare(unit)
            return
        try:
            await driver.start(unit, unit_fingerprint(unit), ref, action.order)
        except UnitError as err:
            raise UnitFailed(unit, err) from err

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
        bundle = desired.bundle
        reason = f"{bundle.ref} failed: {err.reason}"
        # Read the failing unit's output now: going back replaces or stops the unit.
        unit = err.unit if isinstance(err, UnitFailed) else None
        output = await last_lines(self.drivers.of(unit.kind), unit.name) if unit else []
        # New copies started beside running ones go; the old copies never stopped serving.
        await self.drivers.abandon()
        good = self.memory.last_good
        if good is not None and good.digest != desired.digest:
            log.warning("%s; rolling back to %s", reason, good.bundle.ref)
            try:
                await self.converge(good.bundle)
                reason += f"; rolled back to {good.bundle.ref}"
            except UnitError as again:
                reason += f"; rolling back to {good.bundle.ref} failed too: {again.reason}"
        elif good is None:
            # Nothing good to go back to: stop what the failed version started.
            log.warning("%s; no earlier version to go back to, stopping its units", reason)
            await self._stop_all(bundle)
            reason += "; no earlier version to roll back to, so its units were stopped"
        log.error("%s", reason)
        failure = Failure(
            self.generation,
            desired.digest,
            reason,
            err.transient,
            unit=unit.name if unit else None,
            output=tuple(output),
        )
        self.memory.failed(failure)

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
            await self.converge(good.bundle)
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
        items = [_item(s) for s in observed]
        state = checked(
            ReportedState(
                generation=self.generation,
                bundle=running.name if running else None,
                version=running.version if running else None,
                digest=good.digest if good else None,
                items=items,
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
        problem = trouble or _degraded(running, observed)
        status = ApplyStatus.DEGRADED if problem else ApplyStatus.RUNNING
        return msgspec.structs.replace(state, status=status.value, reason=problem)

    async def close(self) -> None:
        """Stop talking to drivers; running units keep running."""
        await self.drivers.close()
        if self._http is not None:
            await self._http.aclose()


def _item(status: UnitStatus) -> ReportedItem:
    return ReportedItem(
        kind=status.kind,
        name=status.name,
        state=status.state.value,
        healthy=status.state is UnitState.RUNNING,
        since=status.since,
        exit_code=status.exit_code,
        restart_count=status.restart_count,
        image=status.image,
        image_digest=status.image_digest,
        artifact_sha256=status.artifact_sha256,
        bundle=status.bundle,
        last_error=status.last_error,
        update_order=status.update_order,
    )


def _degraded(bundle: BundleSpec, observed: list[UnitStatus]) -> str | None:
    """A reason when a unit of the running bundle is not running, else None."""
    found = {(s.kind, s.name): s for s in observed}
    problems = []
    for unit in bundle.units:
        status = found.get((unit.kind, unit.name))
        if status is None:
            problems.append(f"{unit.kind} {unit.name} is missing")
        elif status.state is not UnitState.RUNNING:
            problems.append(_trouble(status))
    return "; ".join(problems) or None


def _trouble(status: UnitStatus) -> str:
    text = f"{status.kind} {status.name} is {status.state.value}"
    if status.exit_code is not None:
        text += f" (exit code {status.exit_code}, {status.restart_count} restarts)"
    return text + (f": {status.last_error}" if status.last_error else "")


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
