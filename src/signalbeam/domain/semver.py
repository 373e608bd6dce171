"""Semantic versions (semver 2.0.0): parsing and precedence, for ordering bundle versions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

from signalbeam.domain.errors import InvalidInput

_NUM = r"(0|[1-9]\d*)"
_PRE_ID = r"(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
SEMVER_PATTERN = (
    rf"^{_NUM}\.{_NUM}\.{_NUM}"
    rf"(?:-({_PRE_ID}(?:\.{_PRE_ID})*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)
_SEMVER = re.compile(SEMVER_PATTERN)


@total_ordering
@dataclass(frozen=True)
class Version:
    """A parsed version; ordering follows semver precedence (build metadata is ignored)."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: str = ""

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        return text + (f"+{self.build}" if self.build else "")

    def _key(self) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
        # A release sorts after all of its pre-releases; numeric identifiers sort before text.
        pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.prerelease)
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, pre)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


def parse_version(text: str, *, field: str = "version") -> Version:
    """Parse `1.2.0`, `2.0.0-rc.1` or `1.0.0+build.5`, or say what a version looks like."""
    match = _SEMVER.fullmatch(text.strip())
    if match is None:
        raise InvalidInput(
            f'"{text}" is not a semantic version; write it like 1.2.0 or 2.0.0-rc.1', field=field
        )
    major, minor, patch, pre, build = match.groups()
    return Version(
        int(major), int(minor), int(patch), tuple(pre.split(".")) if pre else (), build or ""
    )


def split_ref(ref: str, *, field: str = "bundle") -> tuple[str, str | None]:
    """`name@1.2.0` into its name and version; a bare name means "latest"."""
    name, sep, version = ref.strip().partition("@")
    if not name or (sep and not version):
        raise InvalidInput(f'"{ref}" is not a bundle reference; write NAME@VERSION', field=field)
    return name, version or None
