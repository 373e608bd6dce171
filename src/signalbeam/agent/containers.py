"""Containers through the Docker Engine API (Docker or Podman): `UnitDriver[ContainerSpec]`.

Every container the agent creates carries labels naming its owner (this device), unit,
spec fingerprint and bundle; nothing without our owner label is ever stopped or removed.

Restarts are the agent's job, not the engine's: containers are created with the engine's
restart policy `no`, and the agent restarts a managed container that died, when its
bundle's `restart` says so, after a backoff that doubles up to a minute. Podman restarts
a crashing container with no delay at all (measured: 36 restarts in 3 s), which would
hammer a small device; doing it here behaves the same on both engines.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from signalbeam.agent.container_handover import (
    DRAIN_SECONDS,
    STAGED_SUFFIX,
    attach_body,
    ensure_network,
    leave_dns,
)
from signalbeam.agent.engine_api import (
    PULL_SECONDS,
    Demuxer,
    EngineClient,
    EngineError,
    demux,
    engine_address,
)
from signalbeam.agent.engine_attach import Attached, attach
from signalbeam.agent.spec import ContainerSpec
from signalbeam.agent.units import (
    EngineUnavailable,
    RestartPolicy,
    UnitError,
    UnitState,
    UnitStatus,
)

log = logging.getLogger(__name__)

LABEL = "io.signalbeam"
OWNER, UNIT, FINGERPRINT, BUNDLE, RESTART, ORDER = (
    f"{LABEL}.owner",
    f"{LABEL}.unit",
    f"{LABEL}.fingerprint",
    f"{LABEL}.bundle",
    f"{LABEL}.restart",
    f"{LABEL}.update-order",
)
START_FIRST = "start-first"
STOP_SECONDS = 10
EVENTS_RETRY_SECONDS = 5.0


def container_name(owner: str, unit: str) -> str:
    """The engine-wide name: owner and unit, so two agents on one host never collide."""
    slug = re.sub(r"[^a-zA-Z0-9_.-]", "-", owner).strip("-.") or "device"
    return f"sb-{slug}-{unit}"


def device_network(owner: str) -> str:
    """The network every container of this device joins, its unit name as DNS alias."""
    return container_name(owner, "").removesuffix("-")


def create_body(spec: ContainerSpec, labels: dict[str, str]) -> dict[str, Any]:
    """The `POST /containers/create` body for a spec: pure, so it is tested without an engine."""
    exposed: dict[str, dict[str, Any]] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for mapping in spec.ports:
        rest, _, proto = mapping.partition("/")
        parts = rest.split(":")
        host_ip, host_port, port = parts if len(parts) == 3 else ["", *parts]
        key = f"{port}/{proto or 'tcp'}"
        exposed[key] = {}
        bindings.setdefault(key, []).append({"HostIp": host_ip, "HostPort": host_port})
    body: dict[str, Any] = {
        "Image": spec.image,
        "Env": [f"{k}={v}" for k, v in sorted(spec.env.items())],
        "Labels": labels,
        "ExposedPorts": exposed,
        "HostConfig": {
            "PortBindings": bindings,
            "Binds": list(spec.volumes),
            "RestartPolicy": {"Name": "no"},
        },
    }
    if spec.command is not None:
        body["Cmd"] = list(spec.command)
    return body


def wants_restart(policy: str, exit_code: int | None) -> bool:
    if policy in ("always", "unless-stopped"):
        return True
    return policy == "on-failure" and exit_code not in (None, 0)


def pull_failure(image: str, message: str) -> UnitError:
    """A pull error in words a person can act on, and whether trying again may help."""
    registry = _registry(image)
    text = message.lower()
    if "connection refused" in text:
        return UnitError(
            f"image pull failed: registry {registry} unreachable (connection refused)",
            transient=True,
        )
    if "no such host" in text or "name resolution" in text:
        return UnitError(
            f"image pull failed: registry {registry} unknown (DNS lookup failed)", transient=True
        )
    if "timeout" in text or "timed out" in text or "i/o timeout" in text:
        return UnitError(f"image pull failed: registry {registry} timed out", transient=True)
    if "manifest unknown" in text or "not found" in text or "name unknown" in text:
        return UnitError(f"image pull failed: {image} not found in registry {registry}")
    if "unauthorized" in text or "authentication required" in text or "denied" in text:
        return UnitError(f"image pull failed: registry {registry} refused access to {image}")
    return UnitError(f"image pull failed: {image}: {message[:300]}", transient=True)


def _registry(image: str) -> str:
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def _parse_time(text: str | None) -> datetime | None:
    if not text or text.startswith("0001-"):
        return None
    # Engines give nanoseconds; Python parses microseconds.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00"))
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass
class Healing:
    """The agent-side restart record of one unit."""

    restarts: int = 0
    attempt: int = 0
    pending: asyncio.Task[None] | None = None
    last_error: str | None = None
    started: float = field(default=0.0)


class ContainerDriver:
    """Implements `UnitDriver[ContainerSpec]` over the engine API."""

    kind = "container"

    def __init__(
        self, owner: str, address: str | None = None, restart: RestartPolicy | None = None
    ) -> None:
        self.owner = owner
        self.restart = restart or RestartPolicy()
        self.address = engine_address(address)
        self._engine: EngineClient | None = None
        self._healing: dict[str, Healing] = {}
        self._stopping: set[str] = set()
        # Unit name -> id of its new copy started beside the old one, until `retire`.
        self._staged: dict[str, str] = {}
        self._events: asyncio.Task[None] | None = None

    # -- UnitDriver ---------------------------------------------------------------------

    async def observe(self) -> list[UnitStatus]:
        """Every container this agent manages; schedules restarts of dead ones."""
        managed = await self._current(await self._inspect_managed())
        self._watch_events()
        for info in managed:
            self._maybe_heal(info)
        return [self._with_healing(self._status(info)) for info in managed]

    async def prepare(self, spec: ContainerSpec) -> None:
        """Pull the image unless the engine already has it."""
        engine = self._client()
        try:
            if await engine.call("GET", f"/images/{spec.image}/json", ok_missing=True):
                return
        except EngineError as err:
            raise self._unavailable(err) from err
        log.info("pulling %s", spec.image)
        try:
            async for item in engine.stream(
                "POST", "/images/create", params={"fromImage": spec.image}, timeout=PULL_SECONDS
            ):
                if item.get("error"):
                    raise pull_failure(spec.image, str(item["error"]))
        except EngineError as err:
            if err.status is None:
                raise self._unavailable(err) from err
            raise pull_failure(spec.image, err.message) from err
        if not await engine.call("GET", f"/images/{spec.image}/json", ok_missing=True):
            raise UnitError(f"image pull failed: {spec.image} is not on the device after pulling")

    async def start(
        self, spec: ContainerSpec, fingerprint: str, bundle: str, order: str | None = None
    ) -> None:
        """Run a new container from `spec`.

        With `order` start-first the copy that runs stays up: the new one starts beside it
        under a temporary name, and `retire` completes the switch once it is healthy.
        Otherwise the managed container of this name is replaced.
        """
        beside = order == START_FIRST
        name = container_name(self.owner, spec.name)
        if beside:
            await self._discard_staged(spec.name)
        else:
            await self._remove(spec.name)
        labels = {
            OWNER: self.owner,
            UNIT: spec.name,
            FINGERPRINT: fingerprint,
            BUNDLE: bundle,
            RESTART: spec.restart,
            **({ORDER: order} if order else {}),
        }
        ident = await self._create(spec, name + STAGED_SUFFIX if beside else name, labels)
        if beside:
            self._staged[spec.name] = ident
        else:
            self._healing[spec.name] = Healing(started=asyncio.get_running_loop().time())
        try:
            await self._client().call("POST", f"/containers/{ident}/start")
        except EngineError as err:
            raise self._failure(spec.name, "could not start", err) from err
        how = " beside the running copy" if beside else ""
        log.info("container %s started from %s%s", spec.name, spec.image, how)
        self._watch_events()

    async def retire(self, name: str) -> None:
        """The copy started beside the running one takes over; the old copy stops and goes."""
        new = self._staged.get(name)
        if new is None:
            return
        old = [info["Id"] for info in await self._inspect_managed(unit=name) if info["Id"] != new]
        engine = self._client()
        self._stopping.update(old)
        network = device_network(self.owner)
        try:
            for ident in old:
                await leave_dns(engine, ident, network)
            if old:
                await asyncio.sleep(DRAIN_SECONDS)
            for ident in old:
                await self._stop_and_delete(ident)
            await engine.call(
                "POST",
                f"/containers/{new}/rename",
                params={"name": container_name(self.owner, name)},
            )
        except EngineError as err:
            raise self._failure(name, "could not take over from its old copy", err) from err
        finally:
            self._stopping.difference_update(old)
        del self._staged[name]
        self._heal_anew(name)
        log.info("container %s: the new copy took over, the old one stopped", name)

    async def abandon(self) -> None:
        """Remove every copy started beside a running one (a failed update); the old stay."""
        for name in list(self._staged):
            await self._discard_staged(name)

    async def _create(self, spec: ContainerSpec, name: str, labels: dict[str, str]) -> str:
        engine = self._client()
        network = device_network(self.owner)
        try:
            await ensure_network(engine, network, {OWNER: self.owner})
            created = await engine.call(
                "POST",
                "/containers/create",
                params={"name": name},
                body=attach_body(create_body(spec, labels), network, spec.name),
            )
        except EngineError as err:
            # Docker says 409; Podman says 500 "... is already in use".
            if err.status == 409 or "already in use" in err.message:
                raise UnitError(
                    f"a container named {name} exists and is not managed by SignalBeam; "
                    "remove or rename it"
                ) from err
            raise self._failure(spec.name, "could not be created", err) from err
        return str(created["Id"])

    async def _discard_staged(self, name: str) -> None:
        ident = self._staged.pop(name, None)
        if ident is None:
            return
        self._stopping.add(ident)
        try:
            await self._stop_and_delete(ident)
        except EngineError as err:
            raise self._failure(name, "could not remove its new copy", err) from err
        finally:
            self._stopping.discard(ident)
        self._heal_anew(name)
        log.info("container %s: removed the new copy; the old one keeps running", name)

    def _heal_anew(self, name: str) -> None:
        healing = self._healing.pop(name, None)
        if healing is not None and healing.pending is not None:
            healing.pending.cancel()
        self._healing[name] = Healing(started=asyncio.get_running_loop().time())

    async def _stop_and_delete(self, ident: str) -> None:
        engine = self._client()
        await engine.call(
            "POST",
            f"/containers/{ident}/stop",
            params={"t": STOP_SECONDS},
            timeout=STOP_SECONDS + 20,
            ok_missing=True,
        )
        await engine.call(
            "DELETE", f"/containers/{ident}", params={"force": "true"}, ok_missing=True
        )

    async def stop(self, name: str) -> None:
        """Stop and remove the managed container `name`; a missing one is fine."""
        await self._remove(name)

    async def restart_unit(self, name: str) -> None:
        """Stop the container cleanly and start it again (an operator asked); a restart counted."""
        info = await self._find(name)
        if info is None:
            raise UnitError(f"container {name} is not managed by this agent")
        healing = self._healing.setdefault(name, Healing())
        if healing.pending is not None:
            healing.pending.cancel()
        # Its death on the way is ours: self-healing must not start it a second time.
        self._stopping.add(info["Id"])
        try:
            await self._client().call(
                "POST",
                f"/containers/{info['Id']}/restart",
                params={"t": STOP_SECONDS},
                timeout=STOP_SECONDS + 20,
            )
        except EngineError as err:
            raise self._failure(name, "could not be restarted", err) from err
        finally:
            self._stopping.discard(info["Id"])
        healing.restarts += 1
        healing.attempt, healing.started = 0, asyncio.get_running_loop().time()
        log.info("container %s restarted", name)

    async def signal(self, name: str, signal: str) -> None:
        """Send `signal` to the container's main process (`POST /containers/{id}/kill`)."""
        info = await self._find(name)
        if info is None or not (info.get("State") or {}).get("Running"):
            raise UnitError(f"container {name} is not running, so it cannot take {signal}")
        try:
            await self._client().call(
                "POST", f"/containers/{info['Id']}/kill", params={"signal": signal}
            )
        except EngineError as err:
            raise self._failure(name, f"could not be sent {signal}", err) from err
        log.info("container %s: sent %s", name, signal)

    async def exec(self, name: str, argv: list[str], timeout: float) -> tuple[int, str]:
        """Run `argv` inside the container: exit code and output (124 on timeout)."""
        info = await self._find(name)
        if info is None:
            raise UnitError(f"container {name} is not managed by this agent")
        engine = self._client()
        try:
            created = await engine.call(
                "POST",
                f"/containers/{info['Id']}/exec",
                body={"Cmd": argv, "AttachStdout": True, "AttachStderr": True},
            )
            ident = created["Id"]
            output = await asyncio.wait_for(
                engine.raw(
                    "POST",
                    f"/exec/{ident}/start",
                    body={"Detach": False, "Tty": False},
                    timeout=timeout + 5,
                ),
                timeout,
            )
            result = await engine.call("GET", f"/exec/{ident}/json")
        except TimeoutError:
            return 124, f"still running after {timeout:g}s"
        except EngineError as err:
            return 126, err.message
        code = result.get("ExitCode")
        return (int(code) if isinstance(code, int) else 126), demux(output)

    async def exec_start(
        self, name: str, argv: list[str], *, tty: bool = False, env: list[str] | None = None
    ) -> str:
        """Create an exec of `argv` in the container; its id (for `exec_output`, or with `tty`
        for `exec_attach`)."""
        info = await self._find(name)
        if info is None:
            raise UnitError(f"container {name} is not managed by this agent")
        body: dict[str, Any] = {"Cmd": argv, "AttachStdout": True, "AttachStderr": True}
        if tty:
            body.update(AttachStdin=True, Tty=True)
        if env:
            body["Env"] = env
        try:
            created = await self._client().call("POST", f"/containers/{info['Id']}/exec", body=body)
        except EngineError as err:
            raise UnitError(f"cannot exec in container {name}: {err.message}") from err
        return str(created["Id"])

    async def exec_output(self, ident: str) -> AsyncIterator[tuple[int, bytes]]:
        """Run the exec: its output as it comes, (1 stdout or 2 stderr, bytes)."""
        demuxer = Demuxer()
        body = {"Detach": False, "Tty": False}
        try:
            async for chunk in self._client().byte_stream(
                f"/exec/{ident}/start", params={}, method="POST", body=body
            ):
                for item in demuxer.frames(chunk):
                    yield item
        except EngineError as err:
            raise UnitError(f"the exec in the container failed: {err.message}") from err

    async def exec_attach(self, ident: str) -> Attached:
        """Start a terminal exec on a hijacked connection: keystrokes in, the screen out."""
        try:
            return await attach(
                self.address, f"/exec/{ident}/start", {"Detach": False, "Tty": True}
            )
        except EngineError as err:
            raise UnitError(f"cannot open a terminal in the container: {err.message}") from err

    async def exec_resize(self, ident: str, rows: int, cols: int) -> None:
        """Give a terminal exec a new size; one that has just ended is fine."""
        with contextlib.suppress(EngineError):
            await self._client().call(
                "POST", f"/exec/{ident}/resize", params={"h": rows, "w": cols}
            )

    async def exec_running(self, ident: str) -> bool:
        """Whether an exec's process still runs (False once it has ended or is unknown)."""
        try:
            result = await self._client().call("GET", f"/exec/{ident}/json", ok_missing=True)
        except EngineError:
            return False
        return bool(result and result.get("Running"))

    async def exec_code(self, ident: str) -> int:
        """The exit code of an exec that has ended (126 when the engine does not say)."""
        try:
            result = await self._client().call("GET", f"/exec/{ident}/json")
        except EngineError as err:
            raise UnitError(f"cannot read the exec's exit code: {err.message}") from err
        code = result.get("ExitCode")
        return int(code) if isinstance(code, int) else 126

    async def logs(self, name: str, lines: int = 20) -> str:
        """The last lines the container wrote to stdout and stderr."""
        info = await self._find(name)
        if info is None:
            return ""
        try:
            data = await self._client().raw(
                "GET",
                f"/containers/{info['Id']}/logs",
                params={"stdout": 1, "stderr": 1, "tail": lines},
            )
        except EngineError:
            return ""
        return demux(data)

    async def follow_logs(
        self, name: str, tail: int, since_seconds: float | None, follow: bool
    ) -> AsyncIterator[bytes]:
        """What the container wrote (stdout and stderr, in order), following if asked."""
        info = await self._find(name)
        if info is None:
            raise UnitError(f"container {name} is not managed by this agent")
        params: dict[str, Any] = {"stdout": 1, "stderr": 1, "tail": tail, "follow": int(follow)}
        if since_seconds is not None:
            params["since"] = int(time.time() - since_seconds)
        demuxer = Demuxer()
        try:
            async for chunk in self._client().byte_stream(
                f"/containers/{info['Id']}/logs", params=params
            ):
                if payload := demuxer.feed(chunk):
                    yield payload
        except EngineError as err:
            raise UnitError(f"cannot read the logs of container {name}: {err.message}") from err

    async def close(self) -> None:
        """Stop watching; the containers keep running for the next agent to adopt."""
        tasks = [h.pending for h in self._healing.values() if h.pending is not None]
        if self._events is not None:
            tasks.append(self._events)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._events = None
        if self._engine is not None:
            await self._engine.close()
            self._engine = None

    # -- engine access ------------------------------------------------------------------

    def _client(self) -> EngineClient:
        if self._engine is None:
            self._engine = EngineClient(self.address)
        return self._engine

    def _unavailable(self, err: EngineError) -> EngineUnavailable:
        return EngineUnavailable(err.message, transient=True)

    def _failure(self, name: str, what: str, err: EngineError) -> UnitError:
        if err.status is None:
            return self._unavailable(err)
        return UnitError(f"container {name} {what}: {err.message}")

    async def _inspect_managed(self, unit: str | None = None) -> list[dict[str, Any]]:
        """Inspect our containers (only unit `unit`'s, when given: a health probe's lookup)."""
        engine = self._client()
        wanted = {OWNER: self.owner, **({UNIT: unit} if unit is not None else {})}
        labels = [f"{key}={value}" for key, value in wanted.items()]
        try:
            listed = await engine.call(
                "GET",
                "/containers/json",
                params={"all": "true", "filters": json.dumps({"label": labels})},
            )
        except EngineError as err:
            raise self._unavailable(err) from err
        found = []
        for item in listed or []:
            # Filter again: never trust a filter to be the only guard against foreign units.
            if any((item.get("Labels") or {}).get(k) != v for k, v in wanted.items()):
                continue
            info = await engine.call("GET", f"/containers/{item['Id']}/json", ok_missing=True)
            if info is not None:
                found.append(info)
        return found

    async def _find(self, name: str) -> dict[str, Any] | None:
        """The unit's copy that counts: the new one while it starts beside the old."""
        found = await self._current(await self._inspect_managed(unit=name))
        return found[0] if found else None

    async def _current(self, managed: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One copy per unit: the new one started beside the old, else the one of its name.

        Two copies with nothing started beside are left by an agent that stopped halfway
        through a start-first switch: the one holding the unit's name stays, the other goes.
        """
        copies: dict[str, list[dict[str, Any]]] = {}
        for info in managed:
            copies.setdefault(_labels(info).get(UNIT, ""), []).append(info)
        current = []
        for unit, infos in copies.items():
            staged = self._staged.get(unit)
            keep = next((i for i in infos if i["Id"] == staged), None)
            if keep is None:
                named = "/" + container_name(self.owner, unit)
                keep = next((i for i in infos if i.get("Name") == named), infos[0])
                for leftover in (i for i in infos if i is not keep):
                    log.warning(
                        "removing container %s left by an interrupted update", leftover.get("Name")
                    )
                    with contextlib.suppress(EngineError):
                        await self._stop_and_delete(leftover["Id"])
            current.append(keep)
        return current

    async def _remove(self, name: str) -> None:
        """Stop and remove every copy of unit `name`."""
        healing = self._healing.pop(name, None)
        if healing is not None and healing.pending is not None:
            healing.pending.cancel()
        self._staged.pop(name, None)
        found = await self._inspect_managed(unit=name)
        idents = [info["Id"] for info in found]
        self._stopping.update(idents)
        try:
            for ident in idents:
                await self._stop_and_delete(ident)
        except EngineError as err:
            raise self._failure(name, "could not be removed", err) from err
        finally:
            self._stopping.difference_update(idents)
        if idents:
            log.info("container %s stopped and removed", name)

    # -- status ---------------------------------------------------------------------------

    def _status(self, info: dict[str, Any]) -> UnitStatus:
        labels = _labels(info)
        state = info.get("State") or {}
        running = bool(state.get("Running"))
        code = state.get("ExitCode")
        status = str(state.get("Status") or "")
        if running:
            unit_state = UnitState.RUNNING
        elif status in ("created", "configured", "initialized"):
            unit_state = UnitState.STARTING
        else:
            unit_state = UnitState.EXITED
        error = str(state.get("Error") or "") or None
        if not running and error is None and isinstance(code, int) and status != "created":
            error = f"exited with code {code}"
        return UnitStatus(
            kind="container",
            name=labels.get(UNIT, ""),
            fingerprint=labels.get(FINGERPRINT, ""),
            bundle=labels.get(BUNDLE, ""),
            state=unit_state,
            since=_parse_time(state.get("StartedAt" if running else "FinishedAt")),
            exit_code=None if running or not isinstance(code, int) else code,
            image=str((info.get("Config") or {}).get("Image") or "") or None,
            image_digest=str(info.get("Image") or "") or None,
            last_error=error,
            update_order=labels.get(ORDER) or None,
        )

    def _with_healing(self, status: UnitStatus) -> UnitStatus:
        healing = self._healing.get(status.name)
        if healing is None:
            return status
        pending = healing.pending is not None and not healing.pending.done()
        return UnitStatus(
            **{
                **status.__dict__,
                "state": UnitState.RESTARTING if pending else status.state,
                "restart_count": healing.restarts,
                "last_error": status.last_error or healing.last_error,
            }
        )

    # -- self-healing -----------------------------------------------------------------------

    def _maybe_heal(self, info: dict[str, Any]) -> None:
        status = self._status(info)
        if status.state is not UnitState.EXITED or not status.name:
            return
        if info.get("Id") in self._stopping:
            return
        healing = self._healing.setdefault(status.name, Healing())
        if healing.pending is not None and not healing.pending.done():
            return
        if not wants_restart(_labels(info).get(RESTART, "no"), status.exit_code):
            return
        now = asyncio.get_running_loop().time()
        if healing.started and now - healing.started >= self.restart.stable_after:
            healing.attempt = 0
        delay = self.restart.delay(healing.attempt)
        healing.attempt += 1
        healing.last_error = status.last_error
        healing.pending = asyncio.create_task(self._restart_later(status.name, delay))
        log.warning("container %s %s; restarting in %.0fs", status.name, status.last_error, delay)

    async def _restart_later(self, name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        info = await self._find(name)
        if info is None or (info.get("State") or {}).get("Running"):
            return
        healing = self._healing.get(name)
        try:
            await self._client().call("POST", f"/containers/{info['Id']}/start")
        except EngineError as err:
            log.warning("container %s could not be restarted: %s", name, err.message)
            if healing is not None:
                healing.last_error = err.message
            return
        if healing is not None:
            healing.restarts += 1
            healing.started = asyncio.get_running_loop().time()

    def _watch_events(self) -> None:
        if self._events is None or self._events.done():
            self._events = asyncio.create_task(self._follow_events())

    async def _follow_events(self) -> None:
        """React to a managed container dying at once, instead of at the next report."""
        while True:
            with contextlib.suppress(EngineError):
                async for event in self._client().stream(
                    "GET", "/events", params={"filters": '{"type":["container"]}'}, timeout=None
                ):
                    if event.get("Action") != "die":
                        continue
                    attributes = (event.get("Actor") or {}).get("Attributes") or {}
                    if attributes.get(OWNER) != self.owner:
                        continue
                    if event.get("id") in self._stopping:
                        continue
                    await self._on_death()
            await asyncio.sleep(EVENTS_RETRY_SECONDS)

    async def _on_death(self) -> None:
        with contextlib.suppress(EngineError, UnitError):
            for info in await self._inspect_managed():
                self._maybe_heal(info)


def _labels(info: dict[str, Any]) -> dict[str, str]:
    return dict((info.get("Config") or {}).get("Labels") or {})
