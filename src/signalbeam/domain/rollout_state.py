"""Rollout state as plain data: statuses, per-device records, observations and actions.

Everything here is a frozen dataclass of str, int, bool and aware datetime fields (plus the
policy), so a rollout round-trips through `to_dict`/`from_dict` into one JSON column. Status,
cause and event values are stored by value: add new ones, never rename.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any

from signalbeam.domain.model import ApplyStatus
from signalbeam.domain.rollout_policy import RolloutPolicy


class RolloutStatus(StrEnum):
    """Where a rollout stands."""

    RUNNING = "running"
    PAUSED = "paused"  # an operator paused it; in-flight devices are still tracked
    HALTED = "halted"  # a gate failed and the policy says pause rather than roll back
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    ROLLED_BACK = "rolled_back"

    @property
    def active(self) -> bool:
        """True while the rollout holds its devices (no other rollout may target them)."""
        return self in (RolloutStatus.RUNNING, RolloutStatus.PAUSED, RolloutStatus.HALTED)


class DeviceRolloutStatus(StrEnum):
    """Where one device stands in a rollout."""

    PENDING = "pending"  # in a started wave, not updating yet (offline, window, limit, backoff)
    UPDATING = "updating"  # assigned the new version, no healthy report yet
    SOAKING = "soaking"  # reported the new version healthy; must stay so for the soak time
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


class Cause(StrEnum):
    """Why a device is in its status, for machines; `reason` says it for people."""

    AGENT = "agent"  # the agent reported that applying the bundle failed
    TIMEOUT = "timeout"  # no healthy report within the apply timeout
    OFFLINE = "offline"  # offline when due (skipped) or during the soak (failed)
    UNHEALTHY = "unhealthy"  # degraded or failed during the soak
    RETRYING = "retrying"  # a transient failure; waiting for the backoff to pass
    RETURNED = "returned"  # skipped earlier, eligible again (back online, back in the target)
    LEFT_TARGET = "left_target"  # left the target before it started updating
    BUSY = "busy"  # another active rollout holds the device
    CORDONED = "cordoned"  # an operator cordoned the device: no new updates until uncordoned
    STOPPED = "stopped"  # the rollout ended before the device finished


class RolloutEventType(StrEnum):
    """Activity records a rollout produces; append-only, add but never rename."""

    WAVE_STARTED = "rollout.wave_started"
    DEVICE_SUCCEEDED = "rollout.device_succeeded"
    DEVICE_FAILED = "rollout.device_failed"
    DEVICE_RETRYING = "rollout.device_retrying"
    DEVICE_SKIPPED = "rollout.device_skipped"
    HALTED = "rollout.halted"
    PAUSED = "rollout.paused"
    RESUMED = "rollout.resumed"
    CANCELLED = "rollout.cancelled"
    ROLLED_BACK = "rollout.rolled_back"
    COMPLETED = "rollout.completed"


@dataclass(frozen=True)
class DeviceObservation:
    """One device as the control plane sees it at this step.

    `desired_generation` is the device's current desired generation; `generation`, `status`,
    `reason`, `retryable`, `bundle` and `version` are its last reported state. `online_since`
    (when known) lets a step notice an outage that began and ended between two steps.
    `claimed_by` names another active rollout that already holds the device. A `cordoned`
    device is not started; one already updating goes on (cordon holds back new changes only).
    """

    online: bool
    desired_generation: int = 0
    generation: int = 0
    status: str = ApplyStatus.IDLE
    reason: str | None = None
    retryable: bool = False
    bundle: str | None = None
    version: str | None = None
    timezone: str | None = None
    online_since: datetime | None = None
    claimed_by: str | None = None
    cordoned: bool = False


@dataclass(frozen=True)
class DeviceRollout:
    """One device's progress in a rollout.

    `since` is when it entered its status (the clock for the apply timeout and the soak).
    `generation` is the lowest generation whose reports speak about this rollout's assignment.
    `previous_*` is what it ran before this rollout first assigned it, the rollback target;
    `changed` says whether that assignment changed anything, so only changed devices revert.
    `accepted` marks a failure an operator accepted by resuming after a halt.
    """

    device_id: str
    wave: int
    since: datetime
    status: DeviceRolloutStatus = DeviceRolloutStatus.PENDING
    cause: Cause | None = None
    reason: str = ""
    attempts: int = 0
    generation: int = 0
    retry_at: datetime | None = None
    offline_since: datetime | None = None
    previous_bundle: str | None = None
    previous_version: str | None = None
    changed: bool = False
    reverted: bool = False
    accepted: bool = False

    @property
    def in_flight(self) -> bool:
        """True while the device's outcome is still open."""
        return self.status in _OPEN

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data."""
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeviceRollout:
        """The inverse of `to_dict`; fields added later take their defaults."""
        return cls(**_decode(cls, data))


_OPEN = frozenset(
    {DeviceRolloutStatus.PENDING, DeviceRolloutStatus.UPDATING, DeviceRolloutStatus.SOAKING}
)


@dataclass(frozen=True)
class RolloutState:
    """A whole rollout: what it moves where, how, and every device it has taken into a wave.

    `wave` is the index of the latest started wave (-1 before the first step). `devices`
    keeps wave order, and within a wave the target's order. `reason` says why the rollout is
    halted, paused, cancelled or rolled back.
    """

    rollout_id: str
    bundle: str
    version: str
    policy: RolloutPolicy
    created_at: datetime
    updated_at: datetime
    status: RolloutStatus = RolloutStatus.RUNNING
    wave: int = -1
    devices: tuple[DeviceRollout, ...] = ()
    reason: str = ""

    @property
    def ref(self) -> str:
        """`bundle@version`, as people write it."""
        return f"{self.bundle}@{self.version}"

    @property
    def label(self) -> str:
        """How messages name this rollout."""
        return f"rollout {self.rollout_id} ({self.ref})"

    @property
    def last_wave(self) -> int:
        """Index of the final wave."""
        return len(self.policy.waves) - 1

    def in_wave(self, wave: int) -> list[DeviceRollout]:
        """The devices of one wave."""
        return [device for device in self.devices if device.wave == wave]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (one column holds a whole rollout)."""
        data = _to_dict(self)
        data["policy"] = self.policy.to_dict()
        data["devices"] = [device.to_dict() for device in self.devices]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RolloutState:
        """The inverse of `to_dict`."""
        return cls(**_decode(cls, data))


@dataclass(frozen=True)
class Assign:
    """Give these devices the rollout's bundle version as their desired state (new generation)."""

    device_ids: tuple[str, ...]
    bundle: str
    version: str


@dataclass(frozen=True)
class Revert:
    """Set a device's desired state back to what it ran before; `None` means nothing ran."""

    device_id: str
    bundle: str | None
    version: str | None


@dataclass(frozen=True)
class Emit:
    """Record an activity event, about one device when `device_id` is set."""

    type: RolloutEventType
    message: str
    device_id: str | None = None


Action = Assign | Revert | Emit


@dataclass(frozen=True)
class Outcome:
    """The new state and what the caller must carry out, in order, in the same transaction."""

    state: RolloutState
    actions: tuple[Action, ...] = ()


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _optional_cause(value: str | None) -> Cause | None:
    return None if value is None else Cause(value)


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "cause": _optional_cause,
    "since": _time,
    "retry_at": _time,
    "offline_since": _time,
    "created_at": _time,
    "updated_at": _time,
    "policy": RolloutPolicy.from_dict,
    "devices": lambda items: tuple(DeviceRollout.from_dict(item) for item in items),
}
_STATUS: dict[type, Callable[[Any], Any]] = {
    DeviceRollout: DeviceRolloutStatus,
    RolloutState: RolloutStatus,
}


def _decode(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    decoders = {**_DECODERS, "status": _STATUS[cls]}
    names = [item.name for item in fields(cls) if item.name in data]
    return {name: decoders.get(name, _same)(data[name]) for name in names}


def _same(value: Any) -> Any:
    return value


def _to_dict(record: DeviceRollout | RolloutState) -> dict[str, Any]:
    return {item.name: _plain(getattr(record, item.name)) for item in fields(record)}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value
