"""The simulator's state file: per server, private, and refused when it does not fit."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from signalbeam.sim import identities
from signalbeam.sim.identities import StateFileError

SERVER = "http://127.0.0.1:8420"


def test_default_file_is_named_after_the_server() -> None:
    assert identities.default_state_file(SERVER) == Path(".signalbeam-sim/127.0.0.1_8420.json")
    assert identities.default_state_file("https://fleet.example.com").name == (
        "fleet.example.com_443.json"
    )


def test_round_trip_keeps_credentials_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "sim.json"
    assert identities.load(path, SERVER) == {}
    identities.save(path, SERVER, {"sim-00000": "sbd_a", "sim-00001": "sbd_b"})
    assert identities.load(path, SERVER) == {"sim-00000": "sbd_a", "sim-00001": "sbd_b"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["sim.json"]


def test_a_file_for_another_server_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sim.json"
    identities.save(path, "http://10.0.0.1:8420", {"sim-00000": "sbd_a"})
    with pytest.raises(StateFileError, match=r"belongs to http://10\.0\.0\.1:8420"):
        identities.load(path, SERVER)


def test_a_damaged_file_says_to_delete_it(tmp_path: Path) -> None:
    path = tmp_path / "sim.json"
    path.write_text("{not json")
    with pytest.raises(StateFileError, match="delete it"):
        identities.load(path, SERVER)
