"""`signalbeam rollouts` against a real server, with virtual devices reporting through the device API."""

from __future__ import annotations

import json

import httpx

from tests.cli.runner import Cli, Result
from tests.conftest import LiveServer
from tests.rollout_support import Fleet, enroll_fleet, push

PULL_FAILED = "image pull failed: registry unreachable"
# What dev-01's failing unit wrote last: 8 lines, one with a colour sequence.
READER_LOG = [f"reader 3.0.0: step {n}" for n in range(1, 8)] + [
    "\x1b[31mgiving up: registry 127.0.0.1:5000 unreachable\x1b[0m"
]


def _as_admin(cli: Cli, server: LiveServer) -> Cli:
    return Cli(cli.config_dir, SIGNALBEAM_SERVER=server.url, SIGNALBEAM_TOKEN=server.admin_token)


async def _fleet(server: LiveServer, http: httpx.AsyncClient) -> Fleet:
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as admin:
        fleet = await enroll_fleet(admin, http, 3, {"site": "oslo"})
        await push(admin, "2.0.0")
        await push(admin, "3.0.0")
    return fleet


async def _watch(cli: Cli, fleet: Fleet, http: httpx.AsyncClient, rollout_id: str) -> Result:
    """Run `rollouts watch` while the devices keep syncing, until it exits by itself."""
    process = cli.start("rollouts", "watch", rollout_id)

    async def exited() -> bool:
        return process.poll() is not None

    try:
        await fleet.until(http, exited, "rollouts watch to end")
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return Result(process.wait(), out, err)


def _started(result: Result) -> str:
    assert result.code == 0, result
    first = result.out.splitlines()[0]
    assert first.startswith("Started rollout "), result.out
    return first.split()[2].rstrip(":")


async def test_plan_create_watch_show_and_list(live_server: LiveServer, cli: Cli) -> None:
    admin = _as_admin(cli, live_server)
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        fleet = await _fleet(live_server, http)
        planned, bad, unknown = admin.run_all(
            [
                "rollouts",
                "create",
                "door-sensor@2.0.0",
                "--selector",
                "site=oslo",
                "--waves",
                "1,100%",
                "--plan",
            ],
            [
                "rollouts",
                "create",
                "door-sensor@2.0.0",
                "--selector",
                "site=oslo",
                "--waves",
                "50%,10%",
            ],
            ["rollouts", "create", "door-sensor@2.0.0", "--group", "kiosks"],
        )
        assert "Plan for door-sensor@2.0.0 to 3 devices (nothing was changed):" in planned.out
        assert "dev-01, dev-02" in planned.out, planned.out
        assert 'waves "50%,10%" shrink' in bad.error_line
        assert unknown.error_line.startswith('error: no group "kiosks"')

        rollout_id = _started(
            admin.run(
                "rollouts",
                "create",
                "door-sensor@2.0.0",
                "--selector",
                "site=oslo",
                "--waves",
                "1,100%",
                "--soak",
                "1s",
                "--retry-backoff",
                "5s",
            )
        )
        watched = await _watch(admin, fleet, http, rollout_id)
        policy = json.loads(admin.run("rollouts", "show", rollout_id, "--json").out)["policy"]
    assert policy["retry_backoff_seconds"] == 5.0 and policy["soak_seconds"] == 1.0
    assert watched.code == 0, watched
    lines = watched.out.splitlines()
    assert lines[-2].startswith("[####################] completed   wave 2/2  3/3 succeeded")
    assert lines[-1] == (
        f"rollout {rollout_id} (door-sensor@2.0.0) completed: "
        "3 devices run door-sensor@2.0.0; 0 failed, 0 skipped"
    )
    shown, listed = admin.run_all(["rollouts", "show", rollout_id], ["rollouts", "ls"])
    assert f"rollout {rollout_id}: door-sensor@2.0.0" in shown.out
    assert any(line.split()[:3] == ["dev-00", "1", "succeeded"] for line in shown.out.splitlines())
    assert listed.out.splitlines()[1].split()[:4] == [
        rollout_id,
        "door-sensor@2.0.0",
        "completed",
        "selector",
    ]


async def test_a_failing_rollout_ends_the_watch_with_one_error_line(
    live_server: LiveServer, cli: Cli
) -> None:
    admin = _as_admin(cli, live_server)
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        fleet = await _fleet(live_server, http)
        fleet["dev-01"].fail_with = PULL_FAILED
        fleet["dev-01"].failure_log = READER_LOG
        rollout_id = _started(
            admin.run(
                "rollouts",
                "create",
                "door-sensor@3.0.0",
                "--device",
                "dev-00",
                "-d",
                "dev-01",
                "--waves",
                "100%",
                "--failure-threshold",
                "1",
            )
        )
        watched = await _watch(admin, fleet, http, rollout_id)
        await fleet.sync(http)  # the rollback reaches dev-01, which then reports otherwise
        shown, verbose = admin.run_all(
            ["rollouts", "show", rollout_id], ["rollouts", "show", rollout_id, "-v"]
        )
        held = admin.run("rollouts", "create", "door-sensor@2.0.0", "-d", "dev-01")
    assert watched.error_line == (
        f"error: rollout {rollout_id} (door-sensor@3.0.0) rolled back: 1 devices failed, "
        f"reaching the failure threshold of 1; failed: dev-01 ({PULL_FAILED})"
    )
    # Under the table: the failed device's reason and its unit's last lines, as plain text.
    assert _failure(shown.out) == [
        f"dev-01 failed: {PULL_FAILED}",
        "Last 5 of 8 lines of reader:",
        *READER_LOG[3:7],
        "giving up: registry 127.0.0.1:5000 unreachable",
        "Every line: signalbeam rollouts show ID --verbose",
    ], shown.out
    assert _failure(verbose.out) == [
        f"dev-01 failed: {PULL_FAILED}",
        "Last 8 lines of reader:",
        *READER_LOG[:7],
        "giving up: registry 127.0.0.1:5000 unreachable",
    ], verbose.out
    assert "\x1b" not in shown.out + verbose.out
    # The rollout has ended, so the device is free for another one.
    assert held.code == 0, held
    paused, again = admin.run_all(
        ["rollouts", "pause", _started(held)], ["rollouts", "resume", rollout_id]
    )
    assert paused.out.strip().endswith("paused; now paused"), paused
    assert again.error_line.startswith(
        f"error: rollout {rollout_id} (door-sensor@3.0.0) is rolled_back, so it cannot be resumed"
    )
    cancelled = admin.run("rollouts", "cancel", _started(held))
    assert cancelled.out.strip().endswith("cancelled; now cancelled"), cancelled


def _failure(out: str) -> list[str]:
    """The lines from dev-01's failure heading on, stripped and without blanks."""
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    start = next(i for i, line in enumerate(lines) if line.startswith("dev-01 failed: "))
    return lines[start:]
