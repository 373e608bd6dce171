"""`signalbeam server` refuses a bad setting with one line naming the flag or variable to fix."""

from __future__ import annotations

from pathlib import Path

from tests.cli.runner import Cli


def test_a_bad_flag_names_the_flag_and_its_variable(cli: Cli, tmp_path: Path) -> None:
    result = cli.run("server", "--data-dir", str(tmp_path / "srv"), "--offline-after-missed", "0")
    assert result.error_line == (
        "error: offline_after_missed: must be at least 1 missed interval "
        "(set it with --offline-after-missed or SIGNALBEAM_OFFLINE_AFTER_MISSED)"
    )


def test_a_bad_variable_without_a_flag_names_the_variable(cli: Cli, tmp_path: Path) -> None:
    result = cli.run(
        "server", "--data-dir", str(tmp_path / "srv"), env={"SIGNALBEAM_INGEST_WRITERS": "0"}
    )
    assert result.error_line.startswith("error: ingest_writers: ")
    assert result.error_line.endswith("(set it with SIGNALBEAM_INGEST_WRITERS)")
    assert not (tmp_path / "srv").exists(), "nothing is set up from a refused configuration"
