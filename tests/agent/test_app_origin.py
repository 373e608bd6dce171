"""Apps whose artifact has no URL come from the control plane, and need to know which one."""

from __future__ import annotations

from pathlib import Path

import pytest

from signalbeam.agent.apps import AppDriver, single_file_name
from signalbeam.agent.artifacts import ControlPlane
from signalbeam.agent.spec import AppSpec, parse_unit
from signalbeam.agent.units import UnitError

SHA = "b" * 64


def spec(command: list[str]) -> AppSpec:
    return parse_unit(
        {"name": "relay", "artifact": {"name": "relay.bin", "sha256": SHA}, "command": command},
        AppSpec,
    )


async def test_without_a_control_plane_the_app_says_why(tmp_path: Path) -> None:
    driver = AppDriver(tmp_path / "apps", "me")
    try:
        with pytest.raises(UnitError) as caught:
            await driver.prepare(spec(["./relay"]))
    finally:
        await driver.close()
    assert caught.value.reason == (
        "app relay takes its artifact from the control plane (no url), but this agent was not "
        "given a server to download from"
    )


def test_control_plane_download_address_and_credential() -> None:
    origin = ControlPlane("https://beam.example/", "device-secret")
    assert origin.url(SHA) == f"https://beam.example/api/device/v1/artifacts/{SHA}"
    assert origin.headers() == {"Authorization": "Bearer device-secret"}
    assert "device-secret" not in repr(origin)


def test_a_single_file_takes_the_artifact_name_when_there_is_no_url() -> None:
    assert single_file_name(spec(["./relay"])) == "relay"
    assert single_file_name(spec(["python3", "relay.bin"])) == "relay.bin"
