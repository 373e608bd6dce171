"""Bundle use cases: push immutable versions, list and inspect them, diff, and assign to devices."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from signalbeam.domain.errors import Conflict, InvalidInput, NotFound
from signalbeam.domain.model import EventType, Role
from signalbeam.domain.semver import Version, parse_version
from signalbeam.protocol.bundle_v1 import BundleSpec, parse_bundle
from signalbeam.protocol.bundle_yaml import changed_paths, unified_diff
from signalbeam.server.db.models import Bundle, BundleVersion
from signalbeam.server.observability.tracing import traced
from signalbeam.server.repositories.bundles import AlreadyStored
from signalbeam.server.runtime import Runtime
from signalbeam.server.services import artifacts as artifact_service
from signalbeam.server.services.context import Actor, UnitOfWork
from signalbeam.server.services.desired import set_desired
from signalbeam.server.services.devices import DeviceFilter, matching_ids
from signalbeam.server.services.signing import bundle_document, server_sign

LATEST = "latest"
MAX_VERSION_LENGTH = 200
MAX_VERSION_NUMBER = 2**63 - 1


@dataclass(frozen=True)
class Pushed:
    """The stored version, and whether this push created it (False: it was already there)."""

    version: BundleVersion
    created: bool


@dataclass(frozen=True)
class VersionSummary:
    """A bundle version and how many live devices run it now and should run it."""

    version: BundleVersion
    running: int
    desired: int


@dataclass(frozen=True)
class BundleSummary:
    """A bundle with its latest version (by semver) and device counts over all its versions."""

    bundle: Bundle
    latest: str
    versions: int
    running: int
    desired: int
    updated_at: datetime


@dataclass(frozen=True)
class BundleDetail:
    """A bundle's summary and every version, newest first."""

    summary: BundleSummary
    versions: list[VersionSummary]


@dataclass(frozen=True)
class BundleDiff:
    """What changed between two versions: a unified diff of their YAML and the changed paths."""

    before: BundleVersion
    after: BundleVersion
    diff: str
    paths: list[str]


@dataclass(frozen=True)
class Assignment:
    """The version assigned and each device's new desired generation."""

    version: BundleVersion
    generations: dict[str, int]
    # Matched but left out: cordoned devices take no new assignments.
    cordoned: list[str] = field(default_factory=list)


def short_digest(digest: str) -> str:
    """`sha256:0123456789ab…`, enough to tell versions apart in messages."""
    return digest[:19] + "…"


def _precedence(row: BundleVersion) -> tuple[Version, int]:
    return parse_version(row.version), row.id


def newest_first(rows: Sequence[BundleVersion]) -> list[BundleVersion]:
    """Versions by semver precedence, highest first (1.10.0 before 1.9.0)."""
    return sorted(rows, key=_precedence, reverse=True)


def _checked_version(spec: BundleSpec) -> Version:
    if len(spec.version) > MAX_VERSION_LENGTH:
        raise InvalidInput(
            f"version: at most {MAX_VERSION_LENGTH} characters, please", field="version"
        )
    parsed = parse_version(spec.version)
    if max(parsed.major, parsed.minor, parsed.patch) > MAX_VERSION_NUMBER:
        raise InvalidInput("version: a version number is too large to store", field="version")
    return parsed


STORE_ATTEMPTS = 4


@traced("bundles.push")
async def push(runtime: Runtime, actor: Actor, document: Any) -> Pushed:
    """Store a new bundle version; the same version again is fine only with the same content."""
    actor.require(Role.OPERATOR)
    spec = parse_bundle(await artifact_service.pin_artifacts(runtime, actor, document))
    parsed = _checked_version(spec)
    # A concurrent push may store the bundle, then the version, first; each lost race
    # makes progress for someone, so deciding again a few times always settles.
    for _ in range(STORE_ATTEMPTS - 1):
        try:
            return await _store(runtime, actor, spec, parsed)
        except AlreadyStored:
            continue
    return await _store(runtime, actor, spec, parsed)


async def _store(runtime: Runtime, actor: Actor, spec: BundleSpec, parsed: Version) -> Pushed:
    digest = spec.digest()
    now = datetime.now(UTC)
    async with runtime.unit_of_work(actor) as uow:
        existing = await uow.bundles.version(spec.name, spec.version)
        if existing is not None:
            if existing.digest != digest:
                raise Conflict(
                    f"bundle versions are immutable: {spec.ref} already exists with a "
                    "different digest; push it as a new version",
                    field="version",
                )
            return Pushed(existing, created=False)
        bundle = await uow.bundles.get(spec.name) or await uow.bundles.add(
            Bundle(name=spec.name, created_at=now, created_by=str(actor))
        )
        row = await uow.bundles.add_version(
            BundleVersion(
                bundle_id=bundle.id,
                name=spec.name,
                version=spec.version,
                major=parsed.major,
                minor=parsed.minor,
                patch=parsed.patch,
                is_release=not parsed.prerelease,
                prerelease=".".join(parsed.prerelease),
                digest=digest,
                spec=spec.canonical(),
                description=spec.description,
                created_at=now,
                created_by=str(actor),
            )
        )
        await artifact_service.record_references(uow, row, spec)
        await server_sign(uow, row)
        uow.record(
            EventType.BUNDLE_PUSHED,
            f"bundle {spec.ref} pushed ({short_digest(digest)})",
            data={"bundle": spec.name, "version": spec.version, "digest": digest},
        )
        await uow.commit()
    return Pushed(row, created=True)


async def list_bundles(runtime: Runtime, actor: Actor) -> list[BundleSummary]:
    """Every bundle of the tenant with its latest version and device counts."""
    async with runtime.unit_of_work(actor) as uow:
        bundles = await uow.bundles.all()
        index = await uow.bundles.version_index()
        running = await uow.bundles.running_counts()
        desired = await uow.bundles.desired_counts()
    versions: dict[str, list[str]] = {}
    pushed: dict[str, datetime] = {}
    for name, version, at in index:
        versions.setdefault(name, []).append(version)
        pushed[name] = max(at, pushed.get(name, at))
    return [
        BundleSummary(
            bundle=bundle,
            latest=max(versions[bundle.name], key=parse_version),
            versions=len(versions[bundle.name]),
            running=running[(bundle.name, None)],
            desired=desired[(bundle.name, None)],
            updated_at=pushed[bundle.name],
        )
        for bundle in bundles
        if bundle.name in versions
    ]


async def _bundle(uow: UnitOfWork, name: str) -> Bundle:
    bundle = await uow.bundles.get(name)
    if bundle is None:
        raise NotFound(
            f'no bundle "{name}" in this tenant; list bundles with `signalbeam bundles ls`',
            field="name",
        )
    return bundle


async def _resolve(uow: UnitOfWork, name: str, version: str) -> BundleVersion:
    """A version by its text, or the highest by semver for `latest`."""
    if version == LATEST:
        highest = await uow.bundles.highest(name)
        if not highest:
            await _bundle(uow, name)
            raise NotFound(f"bundle {name} has no versions yet", field="version")
        return newest_first(highest)[0]
    row = await uow.bundles.version(name, version)
    if row is None:
        await _bundle(uow, name)
        known = [v.version for v in newest_first(await uow.bundles.versions(name))]
        raise NotFound(
            f"no version {version} of {name}; it has {', '.join(known[:10])}"
            + (" and older" if len(known) > 10 else ""),
            field="version",
        )
    return row


async def show(runtime: Runtime, actor: Actor, name: str) -> BundleDetail:
    """A bundle and every version, newest first, with per-version device counts."""
    async with runtime.unit_of_work(actor) as uow:
        bundle = await _bundle(uow, name)
        rows = newest_first(await uow.bundles.versions(name))
        if not rows:
            raise NotFound(f"bundle {name} has no versions yet", field="name")
        running = await uow.bundles.running_counts(name)
        desired = await uow.bundles.desired_counts(name)
    versions = [
        VersionSummary(row, running[(name, row.version)], desired[(name, row.version)])
        for row in rows
    ]
    summary = BundleSummary(
        bundle=bundle,
        latest=rows[0].version,
        versions=len(rows),
        running=running[(name, None)],
        desired=desired[(name, None)],
        updated_at=max(row.created_at for row in rows),
    )
    return BundleDetail(summary=summary, versions=versions)


async def show_version(runtime: Runtime, actor: Actor, name: str, version: str) -> VersionSummary:
    """One version (or `latest`) with its spec and device counts."""
    async with runtime.unit_of_work(actor) as uow:
        row = await _resolve(uow, name, version)
        running = await uow.bundles.running_counts(name)
        desired = await uow.bundles.desired_counts(name)
    return VersionSummary(row, running[(name, row.version)], desired[(name, row.version)])


async def diff(runtime: Runtime, actor: Actor, name: str, before: str, after: str) -> BundleDiff:
    """The changes from one version to another, as a unified YAML diff and a list of paths."""
    async with runtime.unit_of_work(actor) as uow:
        old = await _resolve(uow, name, before)
        new = await _resolve(uow, name, after)
    text = unified_diff(old.spec, new.spec, f"{name}@{old.version}", f"{name}@{new.version}")
    return BundleDiff(old, new, text, changed_paths(old.spec, new.spec))


@dataclass(frozen=True)
class Target:
    """Which devices an assignment is for: exactly one of the three is given."""

    devices: list[str] | None = None
    group: str | None = None
    selector: str | None = None

    def kind(self) -> str:
        """`devices`, `group` or `selector`; refuses none or more than one."""
        given = [
            kind
            for kind, value in (
                ("devices", self.devices),
                ("group", self.group),
                ("selector", self.selector),
            )
            if value is not None
        ]
        if len(given) != 1:
            got = f" (got {' and '.join(given)})" if given else ""
            raise InvalidInput(
                f"give exactly one target: devices, group or selector{got}", field="target"
            )
        if self.selector is not None and not self.selector.strip():
            # An empty selector matches the whole fleet: too easy to do by accident.
            raise InvalidInput(
                "the selector is empty and would match every device; write one such as env=prod",
                field="selector",
            )
        return given[0]


async def _target_ids(uow: UnitOfWork, target: Target) -> list[str]:
    if target.devices is None:
        request = DeviceFilter(group=target.group, selector=target.selector)
        return await matching_ids(uow, request)
    devices = await uow.devices.get_many(target.devices)
    missing = sorted(set(target.devices) - {d.device_id for d in devices})
    if missing:
        raise NotFound(f"no such devices in this tenant: {', '.join(missing)}", field="devices")
    retired = sorted(d.device_id for d in devices if d.decommissioned_at is not None)
    if retired:
        raise InvalidInput(
            f"decommissioned devices cannot run bundles: {', '.join(retired)}", field="devices"
        )
    return sorted(d.device_id for d in devices)


def _describe(target: Target) -> str:
    if target.group is not None:
        return f'group "{target.group}"'
    if target.selector is not None:
        return f'selector "{target.selector}"'
    return "the device list"


@traced("bundles.assign")
async def assign(
    runtime: Runtime, actor: Actor, name: str, version: str, target: Target
) -> Assignment:
    """Make a bundle version the desired state of the target's live devices (new generations)."""
    actor.require(Role.OPERATOR)
    kind = target.kind()
    async with runtime.unit_of_work(actor) as uow:
        row = await _resolve(uow, name, version)
        matched = await _target_ids(uow, target)
        cordoned = await uow.devices.cordoned_among(matched)
        device_ids = [device_id for device_id in matched if device_id not in cordoned]
        document = await bundle_document(uow, row)
        await uow.commit()
    if not device_ids:
        left_out = f" (cordoned: {', '.join(sorted(cordoned))})" if cordoned else ""
        raise InvalidInput(
            f"no device matched {_describe(target)}{left_out}; nothing was assigned", field=kind
        )
    summary = f"desired state: {row.name}@{row.version}"
    generations = await set_desired(runtime, actor, device_ids, document, summary)
    return Assignment(row, generations, sorted(cordoned))
