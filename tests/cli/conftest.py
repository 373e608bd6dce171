"""Fixtures for CLI tests: the real `signalbeam` command with a private config dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.runner import Cli


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """The CLI, configured in a temp dir and not logged in."""
    return Cli(tmp_path / "config")
