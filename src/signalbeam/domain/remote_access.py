"""Who may open which session on a device: roles, the tenant's switch and its exec allow-list.

The device has the last word (its agent config can refuse remote access); this module is the
control plane's half, pure so every rule is tested without a server.
"""

from __future__ import annotations

import fnmatch
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

from signalbeam.domain.errors import Forbidden, InvalidInput
from signalbeam.domain.model import Role
from signalbeam.protocol.sessions import EXEC, LOGS, REMOTE_ACCESS_KINDS, SHELL

MAX_ALLOW_RULES = 200
HOW_TO_ENABLE = "an admin can turn it on with `signalbeam remote-access enable`"


@dataclass(frozen=True)
class RemoteAccessPolicy:
    """A tenant's remote-access settings: off by default, optionally limited to some commands."""

    enabled: bool = False
    # Shell-style patterns matched against the command line, e.g. "uptime", "systemctl status *".
    exec_allow: tuple[str, ...] = field(default_factory=tuple)


def command_line(argv: Sequence[str]) -> str:
    """The command as a person would type it, quoted where needed."""
    return shlex.join(argv)


def check_allow_rules(rules: Sequence[str]) -> tuple[str, ...]:
    """The allow-list as stored, or InvalidInput naming the bad rule."""
    cleaned = tuple(rule.strip() for rule in rules)
    if len(cleaned) > MAX_ALLOW_RULES:
        raise InvalidInput(f"at most {MAX_ALLOW_RULES} exec rules", field="exec_allow")
    for index, rule in enumerate(cleaned):
        if not rule or len(rule) > 500:
            raise InvalidInput(
                "each exec rule is a non-empty command pattern of at most 500 characters, "
                'such as "uptime" or "systemctl status *"',
                field=f"exec_allow[{index}]",
            )
    return cleaned


def check_session(
    policy: RemoteAccessPolicy, role: Role, kind: str, argv: Sequence[str] = ()
) -> None:
    """Refuse, naming the rule, unless this role may open this kind of session here."""
    if kind == LOGS:
        return  # every role may read logs; the device decides which units it shows
    if not role.allows(Role.OPERATOR):
        raise Forbidden(
            f"{kind} needs the operator role; you are {role.value} (viewers can read logs only)"
        )
    if kind in REMOTE_ACCESS_KINDS and not policy.enabled:
        raise Forbidden(f"remote access is off for this tenant; {HOW_TO_ENABLE}")
    if policy.exec_allow:
        _check_allowed(policy.exec_allow, kind, argv)


def _check_allowed(rules: Sequence[str], kind: str, argv: Sequence[str]) -> None:
    if kind == SHELL:
        raise Forbidden(
            "this tenant limits exec to an allow-list, so an interactive shell is refused; "
            "run an allowed command with `signalbeam exec`"
        )
    if kind != EXEC:
        # A file put can replace any program, and a port can reach any service.
        raise Forbidden(
            f"this tenant limits remote access to an exec allow-list, so {kind} is refused; "
            "an admin can lift the list with `signalbeam remote-access enable`"
        )
    line = command_line(argv)
    if not any(fnmatch.fnmatchcase(line, rule) for rule in rules):
        raise Forbidden(
            f"command {line!r} is not on this tenant's exec allow-list "
            f"({', '.join(repr(rule) for rule in rules)}); an admin can change it with "
            "`signalbeam remote-access enable --allow ...`"
        )
