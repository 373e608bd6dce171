"""Alert rules: created, edited, previewed and deleted by operators; a tenant starts with defaults."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from signalbeam.domain.alerts import DEFAULT_RULES, RuleKind, RuleSpec, Severity, check_rule
from signalbeam.domain.errors import Conflict, InvalidInput, NotFound
from signalbeam.domain.model import EventType, GroupKind, Presence, Role
from signalbeam.domain.selectors import Selector, parse_selector
from signalbeam.server.db.models import AlertRule, Device
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.context import Actor, UnitOfWork
from signalbeam.server.services.devices import DeviceFilter, matching_ids

PREVIEW_LIMIT = 100


@dataclass(frozen=True)
class RuleDraft:
    """A rule as a request carries it, before it is checked."""

    name: str
    kind: str
    severity: str = "warning"
    for_: str | None = None
    selector: str | None = None
    group: str | None = None
    enabled: bool = True
    metric: str | None = None
    threshold: float | None = None
    mount: str | None = None


def spec_of(rule: AlertRule) -> RuleSpec:
    """The checked form of a stored rule."""
    return RuleSpec(
        name=rule.name,
        kind=RuleKind(rule.kind),
        severity=Severity(rule.severity),
        for_seconds=rule.for_seconds,
        selector=rule.selector,
        group=rule.group_name,
        enabled=rule.enabled,
        metric=rule.metric,
        threshold=rule.threshold,
        mount=rule.mount,
    )


async def _checked(uow: UnitOfWork, draft: RuleDraft) -> RuleSpec:
    spec = check_rule(
        draft.name,
        draft.kind,
        draft.severity,
        draft.for_,
        draft.selector,
        draft.group,
        draft.enabled,
        draft.metric,
        draft.threshold,
        draft.mount,
    )
    if spec.kind.per_rollout and (spec.selector or spec.group):
        raise InvalidInput(
            f"a {spec.kind.value} rule watches every rollout; leave out selector and group",
            field="selector" if spec.selector else "group",
        )
    if spec.group is not None and await uow.groups.get(spec.group) is None:
        raise NotFound(
            f'no group "{spec.group}"; list groups with `signalbeam groups ls`', field="group"
        )
    return spec


def _row(spec: RuleSpec, actor: str, now: datetime) -> AlertRule:
    return AlertRule(
        name=spec.name,
        kind=spec.kind.value,
        severity=spec.severity.value,
        for_seconds=spec.for_seconds,
        selector=spec.selector,
        group_name=spec.group,
        enabled=spec.enabled,
        metric=spec.metric,
        threshold=spec.threshold,
        mount=spec.mount,
        created_at=now,
        created_by=actor,
        updated_at=now,
    )


async def add_defaults(uow: UnitOfWork) -> None:
    """Give a new tenant the rules every fleet wants, switched on."""
    now = datetime.now(UTC)
    for spec in DEFAULT_RULES:
        await uow.alert_rules.add(_row(spec, str(uow.actor), now))


async def list_rules(runtime: Runtime, actor: Actor) -> list[AlertRule]:
    """Every rule of the tenant, by name."""
    async with runtime.unit_of_work(actor) as uow:
        return await uow.alert_rules.all()


async def get(runtime: Runtime, actor: Actor, name: str) -> AlertRule:
    """One rule."""
    async with runtime.unit_of_work(actor) as uow:
        return await _get(uow, name)


async def create(runtime: Runtime, actor: Actor, draft: RuleDraft) -> AlertRule:
    """A new rule; its name must be free."""
    actor.require(Role.OPERATOR)
    async with runtime.unit_of_work(actor) as uow:
        spec = await _checked(uow, draft)
        if await uow.alert_rules.get(spec.name) is not None:
            raise Conflict(
                f'alert rule "{spec.name}" already exists; edit it with '
                f"`signalbeam alerts rules edit {spec.name}`",
                field="name",
            )
        rule = await uow.alert_rules.add(_row(spec, str(actor), datetime.now(UTC)))
        uow.record(
            EventType.ALERT_RULE_CHANGED,
            f"alert rule {spec.name} created: {spec.describe()}",
            data={"rule": spec.name, "change": "created"},
        )
        await uow.commit()
    return rule


async def edit(runtime: Runtime, actor: Actor, name: str, changes: dict[str, object]) -> AlertRule:
    """Change some fields of a rule (kind and name stay); the rest keep their values."""
    actor.require(Role.OPERATOR)
    async with runtime.unit_of_work(actor) as uow:
        rule = await _get(uow, name)
        current = spec_of(rule)
        draft = RuleDraft(
            name=rule.name,
            kind=rule.kind,
            severity=str(changes.get("severity", current.severity)),
            for_=_for_text(changes, current),
            selector=changes.get("selector", current.selector),  # type: ignore[arg-type]
            group=changes.get("group", current.group),  # type: ignore[arg-type]
            enabled=bool(changes.get("enabled", current.enabled)),
            metric=current.metric,
            threshold=_float(changes.get("threshold", current.threshold)),
            mount=changes.get("mount", current.mount),  # type: ignore[arg-type]
        )
        spec = await _checked(uow, draft)
        rule.severity = spec.severity.value
        rule.for_seconds = spec.for_seconds
        rule.selector = spec.selector
        rule.group_name = spec.group
        rule.enabled = spec.enabled
        rule.threshold = spec.threshold
        rule.mount = spec.mount
        rule.updated_at = datetime.now(UTC)
        uow.record(
            EventType.ALERT_RULE_CHANGED,
            f"alert rule {name} changed: {spec.describe()}" + ("" if spec.enabled else " (off)"),
            data={"rule": name, "change": "edited"},
        )
        await uow.commit()
    return rule


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _for_text(changes: dict[str, object], current: RuleSpec) -> str | None:
    if "for" in changes:
        value = changes["for"]
        return None if value is None else str(value)
    return f"{current.for_seconds}s" if current.kind.delayed else None


async def delete(runtime: Runtime, actor: Actor, name: str) -> None:
    """Remove a rule and its incidents."""
    actor.require(Role.OPERATOR)
    async with runtime.unit_of_work(actor) as uow:
        rule = await _get(uow, name)
        await uow.alert_rules.delete(rule)
        uow.record(
            EventType.ALERT_RULE_CHANGED,
            f"alert rule {name} deleted",
            data={"rule": name, "change": "deleted"},
        )
        await uow.commit()


@dataclass(frozen=True)
class Preview:
    """What a rule would fire on now."""

    subjects: list[str]
    total: int
    note: str


async def preview(runtime: Runtime, actor: Actor, draft: RuleDraft) -> Preview:
    """The devices (or rollouts) the rule would fire on if it were evaluated now."""
    async with runtime.unit_of_work(actor) as uow:
        spec = await _checked(uow, replace(draft, enabled=True))
        if spec.kind is RuleKind.DEVICE_OFFLINE:
            return await _offline_now(uow, spec)
        if spec.kind is RuleKind.UPDATE_FAILED:
            return await _failed_now(uow, spec)
        if spec.kind is RuleKind.ROLLOUT_HALTED:
            halted = [f"rollout/{r.id}" for r in await uow.rollouts.search("halted")]
            return Preview(halted[:PREVIEW_LIMIT], len(halted), "rollouts halted now")
    return Preview([], 0, f"a {spec.kind.value} rule fires on events as they happen")


async def _offline_now(uow: UnitOfWork, spec: RuleSpec) -> Preview:
    cutoff = datetime.now(UTC) - timedelta(seconds=spec.for_seconds)
    devices = await _scoped(uow, spec, Presence.OFFLINE.value)
    hits = [d.device_id for d in devices if d.last_seen_at is None or d.last_seen_at < cutoff]
    return Preview(hits[:PREVIEW_LIMIT], len(hits), f"offline for longer than {spec.describe()}")


async def _failed_now(uow: UnitOfWork, spec: RuleSpec) -> Preview:
    devices = await _scoped(uow, spec, None)
    hits = [d.device_id for d in devices if d.reported_status == "failed"]
    return Preview(hits[:PREVIEW_LIMIT], len(hits), "their last update failed")


async def _scoped(uow: UnitOfWork, spec: RuleSpec, status: str | None) -> list[Device]:
    ids = await matching_ids(
        uow, DeviceFilter(selector=spec.selector, group=spec.group, status=status)
    )
    return await uow.devices.get_many(ids) if ids else []


class Scope:
    """Which devices a rule covers, resolved once per batch of events."""

    def __init__(self, selector: Selector | None, members: set[int] | None) -> None:
        self.selector = selector
        self.members = members

    def covers(self, device: Device) -> bool:
        if self.members is not None:
            return device.id in self.members
        return self.selector is None or self.selector.matches(device.labels)


async def scope_of(uow: UnitOfWork, spec: RuleSpec) -> Scope:
    """The rule's scope: everything, a selector, or a group (by selector or member list)."""
    if spec.group is None:
        return Scope(parse_selector(spec.selector) if spec.selector else None, None)
    group = await uow.groups.get(spec.group)
    if group is None:
        return Scope(None, set())  # the group was deleted: the rule covers nothing
    if group.kind == GroupKind.DYNAMIC:
        return Scope(parse_selector(group.selector or ""), None)
    return Scope(None, await uow.groups.member_pks(group))


async def _get(uow: UnitOfWork, name: str) -> AlertRule:
    rule = await uow.alert_rules.get(name)
    if rule is None:
        names = ", ".join(r.name for r in await uow.alert_rules.all()) or "none"
        raise NotFound(f'no alert rule "{name}"; rules: {names}', field="rule")
    return rule
