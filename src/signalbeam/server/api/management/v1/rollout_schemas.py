"""Management API v1 bodies for rollouts, and how a stored rollout becomes one."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from signalbeam.domain.rollout_policy import MAX_RETRIES, OfflinePolicy, OnFailure
from signalbeam.domain.rollouts import (
    DeviceRollout,
    DeviceRolloutStatus,
    RolloutPlan,
    RolloutState,
    counts,
    failures,
)
from signalbeam.server.api.management.v1.field_rules import (
    DURATION_OR_ZERO_PATTERN,
    DURATION_PATTERN,
    TARGET_RULE,
    GroupName,
    Selector,
)
from signalbeam.server.api.management.v1.schemas import Body
from signalbeam.server.services.failure_logs import FailureLog
from signalbeam.server.services.rollouts import PlannedRollout, RolloutView

DURATION = "a duration such as 90s, 10m or 1h"
# The policy's rules are checked by `parse_policy`, whose messages say exactly what is wrong
# ("longer than a year", "would never update a device"); these state the same rules in the
# document, from the same constants.
DURATION_RULE: dict[str, Any] = {"pattern": DURATION_PATTERN}
DURATION_OR_ZERO_RULE: dict[str, Any] = {"pattern": DURATION_OR_ZERO_PATTERN}
# A count, or a share up to 100%; a failure threshold must be at least 1 (or 1%).
SUCCESS_RULE: dict[str, Any] = {"pattern": r"^(\d{1,9}|(100|\d{1,2}(\.\d{1,6})?)%)$"}
FAILURE_RULE: dict[str, Any] = {"pattern": r"^([1-9]\d{0,8}|(100|[1-9]\d?(\.\d{1,6})?)%)$"}


def _choices(kind: type[StrEnum]) -> dict[str, Any]:
    return {"enum": [member.value for member in kind]}


class RolloutCreate(Body):
    """A new rollout: what (bundle and version), where (one target), and how (the policy)."""

    model_config = ConfigDict(json_schema_extra=TARGET_RULE)

    bundle: str = Field(min_length=1, max_length=63, examples=["warehouse-monitor"])
    version: str = Field(min_length=1, max_length=200, examples=["1.3.0", "latest"])
    devices: list[str] | None = Field(default=None, min_length=1, max_length=10_000)
    group: GroupName | None = None
    selector: Selector | None = None
    waves: str | None = Field(default=None, max_length=2000, examples=["1,10%,50%,100%"])
    success_threshold: str | None = Field(
        default=None, max_length=16, examples=["100%"], json_schema_extra=SUCCESS_RULE
    )
    failure_threshold: str | None = Field(
        default=None, max_length=16, examples=["30%", "3"], json_schema_extra=FAILURE_RULE
    )
    on_failure: str | None = Field(default=None, json_schema_extra=_choices(OnFailure))
    soak: str | None = Field(
        default=None, max_length=32, description=DURATION, json_schema_extra=DURATION_OR_ZERO_RULE
    )
    apply_timeout: str | None = Field(
        default=None, max_length=32, description=DURATION, json_schema_extra=DURATION_RULE
    )
    offline: str | None = Field(default=None, json_schema_extra=_choices(OfflinePolicy))
    offline_wait: str | None = Field(
        default=None, max_length=32, description=DURATION, json_schema_extra=DURATION_OR_ZERO_RULE
    )
    max_retries: int | None = Field(
        default=None, json_schema_extra={"minimum": 0, "maximum": MAX_RETRIES}
    )
    retry_backoff: str | None = Field(
        default=None, max_length=32, description=DURATION, json_schema_extra=DURATION_OR_ZERO_RULE
    )
    max_parallel: int | None = Field(default=None, json_schema_extra={"minimum": 1})
    window: str | None = Field(default=None, max_length=2000, examples=["Mon-Fri 01:00-05:00"])
    dynamic: StrictBool = False


class StatusCounts(BaseModel):
    """How many devices are in each status."""

    pending: int
    updating: int
    soaking: int
    succeeded: int
    failed: int
    skipped: int


class RolloutWave(BaseModel):
    number: int = Field(description="1 for the first wave")
    size: str = Field(description="the wave's cumulative size as written: 1, 10%, 100%...")
    started: bool
    devices: int
    counts: StatusCounts


class RolloutDevicePublic(BaseModel):
    device_id: str
    wave: int = Field(description="1 for the first wave")
    status: DeviceRolloutStatus
    cause: str | None
    reason: str
    attempts: int
    since: datetime
    previous_bundle: str | None
    previous_version: str | None
    failed_unit: str | None = Field(
        default=None, description="when the agent failed the update: the unit that failed it"
    )
    failure_log: list[str] = Field(
        default=[], description="that unit's last lines (first 10 failed devices only)"
    )


class FailedDevice(BaseModel):
    device_id: str
    reason: str


class RolloutPublic(BaseModel):
    id: int
    bundle: str
    version: str
    status: str
    active: bool
    reason: str
    target: dict[str, Any]
    policy: dict[str, Any]
    wave: int = Field(description="the latest started wave, 1 for the first; 0 before any")
    wave_count: int
    counts: StatusCounts
    created_at: datetime
    created_by: str
    updated_at: datetime


class RolloutDetail(RolloutPublic):
    waves: list[RolloutWave]
    failures: list[FailedDevice]
    devices: list[RolloutDevicePublic]


class RolloutPlanPublic(BaseModel):
    """A dry run: nothing was stored or changed."""

    plan: bool = True
    bundle: str
    version: str
    target: dict[str, Any]
    devices: int
    waves: list[list[str]]
    offline: list[str]


def status_counts(devices: list[DeviceRollout]) -> StatusCounts:
    tally = dict.fromkeys(DeviceRolloutStatus, 0)
    for device in devices:
        tally[device.status] += 1
    return StatusCounts(**{status.value: count for status, count in tally.items()})


def _overall(state: RolloutState) -> StatusCounts:
    return StatusCounts(**{status.value: n for status, n in counts(state).items()})


def rollout(view: RolloutView) -> RolloutPublic:
    row, state = view.row, view.state
    return RolloutPublic(
        id=row.id,
        bundle=row.bundle,
        version=row.version,
        status=state.status.value,
        active=state.status.active,
        reason=state.reason,
        target=row.target,
        policy=state.policy.to_dict(),
        wave=state.wave + 1,
        wave_count=state.last_wave + 1,
        counts=_overall(state),
        created_at=row.created_at,
        created_by=row.created_by,
        updated_at=state.updated_at,
    )


def _wave(state: RolloutState, index: int) -> RolloutWave:
    members = state.in_wave(index)
    return RolloutWave(
        number=index + 1,
        size=str(state.policy.waves[index]),
        started=index <= state.wave,
        devices=len(members),
        counts=status_counts(members),
    )


def _device(device: DeviceRollout, logged: FailureLog | None = None) -> RolloutDevicePublic:
    return RolloutDevicePublic(
        device_id=device.device_id,
        wave=device.wave + 1,
        status=device.status,
        cause=device.cause.value if device.cause else None,
        reason=device.reason,
        attempts=device.attempts,
        since=device.since,
        previous_bundle=device.previous_bundle,
        previous_version=device.previous_version,
        failed_unit=logged.unit if logged else None,
        failure_log=logged.lines if logged else [],
    )


def rollout_detail(view: RolloutView) -> RolloutDetail:
    state = view.state
    return RolloutDetail(
        **rollout(view).model_dump(),
        waves=[_wave(state, index) for index in range(state.last_wave + 1)],
        failures=[FailedDevice(device_id=d, reason=r) for d, r in failures(state)],
        devices=[_device(d, view.failure_logs.get(d.device_id)) for d in state.devices],
    )


def planned(result: PlannedRollout) -> RolloutPlanPublic:
    waves: RolloutPlan = result.plan
    return RolloutPlanPublic(
        bundle=result.bundle,
        version=result.version,
        target=result.target,
        devices=result.devices,
        waves=[list(wave) for wave in waves.waves],
        offline=list(waves.offline),
    )
