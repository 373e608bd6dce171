"""--metrics-listen: loopback unless the operator says otherwise, and a readable mistake."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from signalbeam.server.settings import ServerSettings


def test_a_token_free_listener_stays_on_loopback_unless_allowed(tmp_path: Path) -> None:
    assert ServerSettings(data_dir=tmp_path, metrics_listen="[::1]:9464").metrics_listen_address
    with pytest.raises(ValidationError, match=r"reachable from other machines.*allow-remote"):
        ServerSettings(data_dir=tmp_path, metrics_listen="0.0.0.0:9464")
    allowed = ServerSettings(
        data_dir=tmp_path, metrics_listen="0.0.0.0:9464", metrics_allow_remote=True
    )
    assert str(allowed.metrics_listen_address) == "0.0.0.0:9464"


def test_a_listen_address_without_a_port_says_the_form(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=re.escape("is not HOST:PORT, e.g. 127.0.0.1:9464")):
        ServerSettings(data_dir=tmp_path, metrics_listen="127.0.0.1")
