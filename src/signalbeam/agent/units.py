"""What the bundle reconciler asks of a unit driver (containers, native apps) and hears back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Generic, Protocol, TypeVar

from signalbeam.agent.spec import AppSpec, ContainerSpec


class UnitState(StrEnum):
    """How a managed container or app is doing right now; reported by value."""

    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    EXITED = "exited"
    MISSING = "missing"


@dataclass(frozen=True)
class RestartPolicy:
    """Backoff between restarts of a crashing app: doubling to a cap, reset once it stays up."""

    base: float = 1.0
    cap: float = 60.0
    stable_after: float = 60.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before restart number `attempt` (0-based) of a crash loop."""
        return min(self.cap, self.base * 2.0 ** min(attempt, 62))


class UnitError(Exception):
    """A driver failure with a reason a person can act on.

    Examples: `image pull failed: registry 127.0.0.1:5000 unreachable (connection refused)`,
    `artifact sha256 mismatch: expected ab12..., got 9f00...`. `transient` is True when trying
    again later may well work (a network cut), False when it never will (a bad digest).
    """

    def __init__(self, reason: str, *, transient: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


class EngineUnavailable(UnitError):
    """The device cannot run this kind of unit at all (no container engine, say)."""


@dataclass(frozen=True)
class UnitStatus:
    """One managed unit as the driver observes it."""

    kind: str  # "container" or "app"
    name: str
    fingerprint: str  # `unit_fingerprint` of the spec it was started from
    bundle: str  # `name@version` of the bundle that started it
    state: UnitState
    since: datetime | None = None
    exit_code: int | None = None
    restart_count: int = 0
    image: str | None = None
    image_digest: str | None = None
    artifact_sha256: str | None = None
    last_error: str | None = None
    update_order: str | None = None  # how it replaced the copy before it; None: a first start


SpecT = TypeVar("SpecT", ContainerSpec, AppSpec, contravariant=True)


class UnitDriver(Protocol, Generic[SpecT]):
    """Runs one kind of unit. Touches only units it labelled as managed by this agent.

    Every method raises `UnitError` (or `EngineUnavailable`) with a human reason, never a
    library exception. Blocking library calls run in threads, never on the event loop.
    """

    kind: str

    async def observe(self) -> list[UnitStatus]:
        """Every unit this agent manages, running or not."""
        ...

    async def prepare(self, spec: SpecT) -> None:
        """Fetch what `spec` needs (pull the image; download, verify and unpack the artifact).

        Touches nothing that runs, so a failure here leaves the device as it was.
        """
        ...

    async def start(
        self, spec: SpecT, fingerprint: str, bundle: str, order: str | None = None
    ) -> None:
        """Start the unit, replacing any managed unit of the same name.

        `order` says how it replaces one: `start-first` starts it beside the running copy,
        which keeps running until `retire`; `stop-first` (or None, a first start) replaces it.
        The unit reports the order it was started with.
        """
        ...

    async def retire(self, name: str) -> None:
        """The copy of `name` started beside the running one takes over; the old one stops."""
        ...

    async def abandon(self) -> None:
        """Stop every copy started beside a running one and not retired; the old ones stay."""
        ...

    async def stop(self, name: str) -> None:
        """Stop and remove the managed unit `name`; a missing unit is not an error."""
        ...

    async def restart_unit(self, name: str) -> None:
        """Stop the managed unit `name` cleanly and start it again as it was; counts a restart."""
        ...

    async def signal(self, name: str, signal: str) -> None:
        """Send `signal` (`SIGHUP`, ...) to the running unit `name`: it has new config files."""
        ...

    async def exec(self, name: str, argv: list[str], timeout: float) -> tuple[int, str]:
        """Run a health command in the unit's context: exit code and the tail of its output."""
        ...

    async def logs(self, name: str, lines: int = 20) -> str:
        """The last lines the unit wrote, for failure reasons."""
        ...

    async def close(self) -> None:
        """Release connections and stop supervising (running units keep running)."""
        ...
