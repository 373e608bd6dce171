"""Sessions on this device: connect out for each one the watch names, run it, end it cleanly.

The control plane offers a session on the watch the agent already holds; the agent then opens
a WebSocket to the same server with its own credential (no port is ever open on the device).
The device owner has the last word: exec, shells, copies and forwards run only when the
agent config says `remote_access = true`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from signalbeam.agent.config import AgentSettings
from signalbeam.agent.device_actions import DeviceActions
from signalbeam.agent.session_channel import Channel, SessionRefused
from signalbeam.agent.session_exec import EXIT_TIMEOUT, login_shell, run_command, run_terminal
from signalbeam.agent.session_files import copy_file, forward_port
from signalbeam.agent.session_logs import LogRequest, LogSources, show_logs
from signalbeam.agent.session_terminal import container_terminal
from signalbeam.agent.tls import verify_for
from signalbeam.agent.units import UnitError
from signalbeam.protocol.sessions import (
    ACTION,
    COPY,
    EXEC,
    FORWARD,
    LOGS,
    MAX_FRAME_BYTES,
    REMOTE_ACCESS_KINDS,
    SHELL,
    STDERR,
    FrameError,
    read_control,
)

log = logging.getLogger(__name__)
OPEN_SECONDS = 15.0
REMEMBERED = 256
EXIT_LOST = 255
DEFAULT_TAIL = 200  # lines of a log when the operator did not say


class SessionRunner:
    """Runs the sessions offered to this device, each once, at most `max_sessions` at a time."""

    def __init__(
        self,
        server: str,
        credential: str,
        settings: AgentSettings,
        sources: Callable[[], LogSources],
        units: Any = None,
    ) -> None:
        self.server = server
        self.credential = credential
        self.settings = settings
        self.sources = sources
        self.units = units  # the reconciler's drivers, for container exec and app details
        self.restart_agent: Callable[[], None] | None = None  # the agent's, for the action
        self._seen: deque[str] = deque(maxlen=REMEMBERED)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> int:
        """How many sessions are connecting or running now."""
        return len(self._tasks)

    def offer(self, session_id: str) -> None:
        """A session the watch named: run it unless it is already known."""
        if session_id in self._seen:
            return
        self._seen.append(session_id)
        task = asyncio.create_task(self._run(session_id), name=f"session {session_id[:8]}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """End every running session (the agent is stopping)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _url(self, session_id: str) -> str:
        base = self.server.rstrip("/")
        scheme = "wss://" if base.startswith("https://") else "ws://"
        return scheme + base.split("://", 1)[1] + f"/api/device/v1/sessions/{session_id}"

    async def _run(self, session_id: str) -> None:
        # Imported here: an agent that never runs a session never loads the library.
        from websockets.asyncio.client import connect

        tls = verify_for(self.server)
        try:
            async with connect(
                self._url(session_id),
                additional_headers={"Authorization": f"Bearer {self.credential}"},
                ssl=tls if tls is not False else None,
                max_size=MAX_FRAME_BYTES,
                open_timeout=OPEN_SECONDS,
            ) as socket:
                await self._serve(socket)
        except Exception as err:  # a session must never take the agent down
            log.warning("session %s…: %s", session_id[:8], err or type(err).__name__)

    async def _serve(self, socket: Any) -> None:
        first = await asyncio.wait_for(socket.recv(), OPEN_SECONDS)
        try:
            opened = read_control(first) if isinstance(first, str) else {}
        except FrameError:
            opened = {}
        if opened.get("type") != "open":
            return  # the server said why (not ours, expired); nothing to run
        channel = Channel(socket)
        log.info(
            "session %s: %s by %s",
            str(opened.get("session"))[:8],
            opened.get("kind"),
            opened.get("actor"),
        )
        await self._finish(channel, opened)

    async def _finish(self, channel: Channel, opened: dict[str, Any]) -> None:
        if len(self._tasks) > self.settings.max_sessions:
            await channel.error(
                f"this device already runs {self.settings.max_sessions} sessions; try again "
                f"when one ends, or raise max_sessions in {self.settings.config_file}"
            )
            return
        work = asyncio.create_task(self._dispatch(channel, opened))
        idle = asyncio.create_task(channel.idle_for(self.settings.session_idle_timeout))
        done, _ = await asyncio.wait({work, idle}, return_when=asyncio.FIRST_COMPLETED)
        if idle in done:
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            await channel.error(f"idle for {self.settings.session_idle_timeout:g} s; session ended")
            return
        idle.cancel()
        await self._report(channel, work)

    async def _report(self, channel: Channel, work: asyncio.Task[int | None]) -> None:
        try:
            code = work.result()
        except SessionRefused as err:
            await channel.error(f"refused by the device: {err.detail}")
        except UnitError as err:
            await channel.error(err.reason)
        else:
            if code is not None:
                with contextlib.suppress(Exception):
                    await channel.exit(code)

    async def _dispatch(self, channel: Channel, opened: dict[str, Any]) -> int | None:
        kind = opened.get("kind")
        if kind in REMOTE_ACCESS_KINDS and not self.settings.remote_access:
            raise_refusal(self.settings)
        handlers = {
            LOGS: self._logs,
            EXEC: self._exec,
            SHELL: self._shell,
            COPY: self._copy,
            FORWARD: self._forward,
            ACTION: self._action,
        }
        handler = handlers.get(str(kind))
        if handler is None:
            raise SessionRefused(f"this agent does not know sessions of kind {kind!r}; update it")
        return await handler(channel, opened)

    async def _logs(self, channel: Channel, opened: dict[str, Any]) -> int | None:
        request = LogRequest(
            unit=opened.get("unit"),
            tail=DEFAULT_TAIL if opened.get("tail") is None else int(opened["tail"]),
            since_seconds=opened.get("since_seconds"),
            grep=opened.get("grep"),
            follow=bool(opened.get("follow")),
        )
        # Logs read no input, so nothing else would notice the operator leave a quiet follow.
        return await channel.unless_closed(show_logs(channel, self.sources(), request))

    async def _exec(self, channel: Channel, opened: dict[str, Any]) -> int | None:
        argv = [str(arg) for arg in opened.get("command") or []]
        timeout = opened.get("timeout_seconds")
        unit = opened.get("unit")
        if unit is None:
            return await run_command(
                channel, argv, timeout=timeout, user=self.settings.session_user
            )
        return await self._exec_in_unit(channel, str(unit), argv, timeout)

    async def _exec_in_unit(
        self, channel: Channel, unit: str, argv: list[str], timeout: float | None
    ) -> int | None:
        sources = self.sources()
        kind = sources.units().get(unit)
        if kind == "container" and self.units is not None:
            work = container_exec(channel, self.units.containers, unit, argv, timeout)
            return await channel.unless_closed(work)
        if kind == "app":
            cwd, env = await asyncio.to_thread(app_context, sources, unit)
            return await run_command(
                channel, argv, timeout=timeout, cwd=cwd, env=env, user=self.settings.session_user
            )
        raise SessionRefused(
            f"no unit {unit!r} on this device; units: {', '.join(sorted(sources.units()))}"
        )

    async def _shell(self, channel: Channel, opened: dict[str, Any]) -> int | None:
        argv = [str(arg) for arg in opened.get("command") or []]
        rows, cols = int(opened.get("rows") or 24), int(opened.get("cols") or 80)
        if opened.get("unit"):
            return await self._terminal_in_unit(channel, str(opened["unit"]), argv, rows, cols)
        return await run_terminal(
            channel,
            argv or login_shell(self.settings.session_user),
            rows=rows,
            cols=cols,
            user=self.settings.session_user,
        )

    async def _terminal_in_unit(
        self, channel: Channel, unit: str, argv: list[str], rows: int, cols: int
    ) -> int | None:
        sources = self.sources()
        kind = sources.units().get(unit)
        if kind == "container" and self.units is not None:
            return await container_terminal(
                channel, self.units.containers, unit, argv, rows=rows, cols=cols
            )
        if kind == "app":
            cwd, env = await asyncio.to_thread(app_context, sources, unit)
            # Not a login shell: a profile could reset PATH and move away from the app.
            shell = argv or login_shell(self.settings.session_user)[:1]
            return await run_terminal(
                channel,
                shell,
                rows=rows,
                cols=cols,
                user=self.settings.session_user,
                cwd=cwd,
                env=env,
            )
        raise SessionRefused(
            f"no unit {unit!r} on this device; units: {', '.join(sorted(sources.units()))}"
        )

    async def _action(self, channel: Channel, opened: dict[str, Any]) -> int | None:
        actions = DeviceActions(
            self.settings, lambda: self.sources().units(), self.units, self.restart_agent
        )
        await actions.run(channel, opened)
        return None  # it answered itself, with a detail

    async def _copy(self, channel: Channel, opened: dict[str, Any]) -> int | None:
        return await copy_file(channel, opened)

    async def _forward(self, channel: Channel, opened: dict[str, Any]) -> int | None:
        return await forward_port(
            channel, str(opened.get("host") or "127.0.0.1"), int(opened.get("port") or 0)
        )


def raise_refusal(settings: AgentSettings) -> None:
    """Refuse remote access, saying where the device owner turns it on."""
    raise SessionRefused(
        "remote access is off in its agent config; set remote_access = true in "
        f"{settings.config_file} (or SIGNALBEAM_AGENT_REMOTE_ACCESS=true) and restart the agent"
    )


def app_context(sources: LogSources, unit: str) -> tuple[Any, dict[str, str]]:
    """The working directory and environment an app runs with, from its unit record."""
    import json

    from signalbeam.agent.apps import app_env

    home = sources.app_home(unit)
    record = json.loads((home / "unit.json").read_text())
    return home / str(record.get("sha256", "")), app_env(dict(record.get("env") or {}))


async def container_exec(
    channel: Channel, containers: Any, unit: str, argv: list[str], timeout: float | None
) -> int:
    """Run `argv` in a bundle container through the engine, its output streamed as it comes.

    The Docker API cannot signal an exec, so one that outlives its timeout keeps running in
    the container; the session still ends, with 124.
    """
    ident = await containers.exec_start(unit, argv)

    async def relay() -> None:
        async for stream, data in containers.exec_output(ident):
            await channel.send(stream, data)

    try:
        await asyncio.wait_for(relay(), timeout)
    except TimeoutError:
        await channel.send(STDERR, f"\nsignalbeam: timed out after {timeout:g}s\n".encode())
        return EXIT_TIMEOUT
    return int(await containers.exec_code(ident))
