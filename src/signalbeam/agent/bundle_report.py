"""How the bundle reconciler words what it observes: report items, degradation, config status."""

from __future__ import annotations

from signalbeam.agent.bundle_state import Failure, Good
from signalbeam.agent.spec import BundleSpec
from signalbeam.agent.units import UnitState, UnitStatus
from signalbeam.agent.wire import ReportedConfig, ReportedItem

REASON_CHARS = 2000


def item(status: UnitStatus) -> ReportedItem:
    """One observed unit as the report lists it."""
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


def degraded(bundle: BundleSpec, observed: list[UnitStatus]) -> str | None:
    """A reason when a unit of the running bundle is not running, else None."""
    found = {(s.kind, s.name): s for s in observed}
    problems = []
    for unit in bundle.units:
        status = found.get((unit.kind, unit.name))
        if status is None:
            problems.append(f"{unit.kind} {unit.name} is missing")
        elif status.state is not UnitState.RUNNING:
            problems.append(trouble(status))
    return "; ".join(problems) or None


def trouble(status: UnitStatus) -> str:
    """What is wrong with one unit that does not run."""
    text = f"{status.kind} {status.name} is {status.state.value}"
    if status.exit_code is not None:
        text += f" (exit code {status.exit_code}, {status.restart_count} restarts)"
    return text + (f": {status.last_error}" if status.last_error else "")


def config_status(
    good: Good | None, failure: Failure | None, generation: int
) -> ReportedConfig | None:
    """The config part of a report: what failed now, else what runs; None: no config at all."""
    if failure is not None and failure.generation == generation and failure.config_failed:
        reason = failure.reason
        if len(reason) > REASON_CHARS:
            reason = reason[: REASON_CHARS - 1] + "…"
        return ReportedConfig(digest=failure.config_digest, status="failed", reason=reason)
    if good is not None and good.config is not None:
        return ReportedConfig(digest=good.config.digest, status="applied")
    return None
