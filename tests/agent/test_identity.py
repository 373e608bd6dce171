"""Identity: a stable device id, and a credential only its owner can read."""

from __future__ import annotations

import re
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from signalbeam.agent.identity import (
    Identity,
    IdentityError,
    derive_device_id,
    load_identity,
    save_identity,
)
from signalbeam.protocol.device_v1 import EnrollRequest


def test_device_id_is_a_keyed_hash_of_the_machine_id(tmp_path: Path) -> None:
    machine_id = tmp_path / "machine-id"
    machine_id.write_text("3d1219c7c4c5404aaa1f6d2a48adfda4\n")
    first = derive_device_id(tmp_path / "state", [machine_id])
    assert first == derive_device_id(tmp_path / "other", [machine_id]), "stable per machine"
    assert "3d1219c7" not in first, "the machine id itself is not exposed"
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    EnrollRequest(token="t", device_id=first)  # the server accepts it


def test_without_a_machine_id_one_is_generated_and_kept(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = derive_device_id(state, [tmp_path / "missing"])
    assert first == derive_device_id(state, [tmp_path / "missing"])
    assert (state / "device-id").read_text().strip() == first


def test_identity_is_stored_with_mode_0600_and_never_shown(tmp_path: Path) -> None:
    identity = Identity(
        server="http://127.0.0.1:8420",
        device_id="pi-1",
        credential="sbd_secret",
        enrolled_at=datetime.now(UTC),
    )
    path = save_identity(tmp_path / "state", identity)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_identity(tmp_path / "state") == identity
    assert "sbd_secret" not in repr(identity)


def test_missing_or_damaged_identity_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(IdentityError, match=r"not registered.*signalbeam-agent register"):
        load_identity(tmp_path)
    (tmp_path / "identity.json").write_text('{"server": 1}')
    with pytest.raises(IdentityError, match="damaged"):
        load_identity(tmp_path)
