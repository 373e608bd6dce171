"""What the bundle reconciler remembers across restarts: the last good version and a failure.

The last good version includes the config it ran healthy with (values and secrets, which
is why the file is owner-only) and the desired generation that brought it, so a restarted
agent can put it back and never applies an older generation's config after it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from signalbeam.agent.config_layers import Config
from signalbeam.agent.identity import ensure_state_dir, read_json, write_json
from signalbeam.agent.spec import BundleSpec, parse_bundle
from signalbeam.domain.errors import InvalidInput

log = logging.getLogger(__name__)
BUNDLE_STATE_FILE = "bundles.json"


@dataclass(frozen=True)
class Good:
    """A bundle version that ran healthy on this device: where a rollback goes."""

    bundle: BundleSpec
    digest: str
    config: Config | None = None
    generation: int = 0

    @property
    def config_digest(self) -> str | None:
        return self.config.digest if self.config else None


@dataclass(frozen=True)
class Failure:
    """The desired generation that could not be applied, why, and the failing unit's output."""

    generation: int
    digest: str
    reason: str
    retryable: bool = False
    unit: str | None = None
    output: tuple[str, ...] = ()
    # With `config_failed`, the config digest it tried (None: it had no config) failed too.
    config_digest: str | None = None
    config_failed: bool = False


class BundleMemory:
    """`bundles.json` in the state dir; a damaged file is ignored with one log line."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / BUNDLE_STATE_FILE
        self.last_good: Good | None = None
        self.failure: Failure | None = None
        self._load(read_json(self.path))

    def _load(self, data: Any) -> None:
        if not isinstance(data, dict):
            return
        try:
            good = data.get("last_good")
            if good is not None:
                config = good.get("config")
                self.last_good = Good(
                    parse_bundle(good["bundle"]),
                    str(good["digest"]),
                    Config.from_json(config) if config is not None else None,
                    int(good.get("generation", 0)),
                )
            failure = data.get("failure")
            if failure is not None:
                self.failure = Failure(**{**failure, "output": tuple(failure.get("output", ()))})
        except (InvalidInput, KeyError, TypeError, ValueError) as err:
            log.warning("ignoring damaged %s (%s); it will be rewritten", self.path, err)

    def succeeded(self, good: Good) -> None:
        """`good` runs healthy: it is the new rollback target and no failure stands."""
        self.last_good, self.failure = good, None
        self._save()

    def failed(self, failure: Failure) -> None:
        """Remember a failed generation so a restart does not try it again."""
        self.failure = failure
        self._save()

    def forget(self) -> None:
        """Nothing runs any more (the device was drained): no version to go back to."""
        self.last_good, self.failure = None, None
        self._save()

    def _save(self) -> None:
        good = self.last_good
        value = {
            "last_good": {
                "bundle": good.bundle.canonical(),
                "digest": good.digest,
                "config": good.config.to_json() if good.config else None,
                "generation": good.generation,
            }
            if good
            else None,
            "failure": asdict(self.failure) if self.failure else None,
        }
        try:
            write_json(ensure_state_dir(self.path.parent) / self.path.name, value)
        except OSError as err:
            log.error("cannot write %s (%s); a restart may retry a failed version", self.path, err)
