"""The seam for bundles: the sync loop hands each new desired state to a `Reconciler`."""

from __future__ import annotations

from typing import Any, Protocol

from signalbeam.agent.wire import ReportedState


class Reconciler(Protocol):
    """Makes the device run the desired state and says what actually runs."""

    async def apply(self, generation: int, spec: dict[str, Any]) -> ReportedState:
        """Converge on `spec`; the answer goes back to the server on the next sync.

        Called once per new generation (and once at start with the state kept on disk), never
        concurrently. Raising is allowed: the loop reports the error as status `failed`.
        """
        ...

    async def report(self) -> ReportedState | None:
        """What runs right now, between applies (a crash loop shows up here); None: unchanged."""
        ...

    async def close(self) -> None:
        """Release resources; what runs keeps running."""
        ...


class NullReconciler:
    """Runs nothing: reports every generation as applied with status `idle`."""

    async def apply(self, generation: int, spec: dict[str, Any]) -> ReportedState:
        """Accept the desired state as is."""
        return ReportedState(generation=max(0, generation), status="idle")

    async def report(self) -> ReportedState | None:
        """Nothing runs, so nothing changes."""
        return None

    async def close(self) -> None:
        """Nothing to release."""
