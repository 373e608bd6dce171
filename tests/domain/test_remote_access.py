"""The control plane's half of remote-access rules: roles, the tenant switch, the allow-list."""

from __future__ import annotations

import pytest

from signalbeam.domain.errors import Forbidden, InvalidInput
from signalbeam.domain.model import Role
from signalbeam.domain.remote_access import RemoteAccessPolicy, check_allow_rules, check_session

ON = RemoteAccessPolicy(enabled=True)


def refusal(policy: RemoteAccessPolicy, role: Role, kind: str, *argv: str) -> str:
    with pytest.raises(Forbidden) as caught:
        check_session(policy, role, kind, argv)
    return caught.value.detail


@pytest.mark.parametrize("role", list(Role))
def test_every_role_reads_logs_even_with_remote_access_off(role: Role) -> None:
    check_session(RemoteAccessPolicy(), role, "logs")


@pytest.mark.parametrize("kind", ["exec", "shell"])
def test_exec_and_shell_are_off_by_default_and_say_how_to_enable(kind: str) -> None:
    detail = refusal(RemoteAccessPolicy(), Role.ADMIN, kind, "id")
    assert detail.startswith("remote access is off for this tenant")
    assert "signalbeam remote-access enable" in detail


def test_viewers_cannot_exec_even_when_enabled() -> None:
    assert "you are viewer" in refusal(ON, Role.VIEWER, "exec", "id")
    check_session(ON, Role.OPERATOR, "exec", ["id"])
    check_session(ON, Role.OPERATOR, "shell")


def test_the_allow_list_matches_the_whole_command_line() -> None:
    policy = RemoteAccessPolicy(enabled=True, exec_allow=("uptime", "systemctl status *"))
    check_session(policy, Role.OPERATOR, "exec", ["uptime"])
    check_session(policy, Role.OPERATOR, "exec", ["systemctl", "status", "nginx"])
    assert "'uptime -p' is not on" in refusal(policy, Role.OPERATOR, "exec", "uptime", "-p")
    assert "'systemctl restart nginx'" in refusal(
        policy, Role.OPERATOR, "exec", "systemctl", "restart", "nginx"
    )
    # Quoting is part of the line: an argument cannot smuggle a second command past a rule.
    assert "is not on" in refusal(policy, Role.OPERATOR, "exec", "uptime; reboot")
    assert "interactive shell is refused" in refusal(policy, Role.ADMIN, "shell")


def test_allow_rules_are_checked_and_trimmed() -> None:
    assert check_allow_rules([" uptime ", "df *"]) == ("uptime", "df *")
    with pytest.raises(InvalidInput) as caught:
        check_allow_rules(["uptime", "  "])
    assert caught.value.field == "exec_allow[1]"


@pytest.mark.parametrize("kind", ["copy", "forward"])
def test_copy_and_forward_are_remote_access_and_refused_under_an_allow_list(kind: str) -> None:
    assert "remote access is off" in refusal(RemoteAccessPolicy(), Role.ADMIN, kind)
    check_session(ON, Role.OPERATOR, kind)
    limited = RemoteAccessPolicy(enabled=True, exec_allow=("uptime",))
    assert f"so {kind} is refused" in refusal(limited, Role.OPERATOR, kind)
