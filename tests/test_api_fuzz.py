"""Schemathesis throws generated and mutated requests at every operation, with every check.

No request may crash the server, and the OpenAPI document must be exact: every status and
content type the server answers is declared, requests the schema allows are accepted and
those it forbids refused, undeclared methods get 405 with `Allow`, and what an operation
creates can be read back. The few narrow exceptions, each with its reason, are in
tests/server/api/fuzz.toml.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import start_server, stop_server

CONFIG = Path(__file__).parent / "server" / "api" / "fuzz.toml"


def test_the_api_keeps_its_openapi_contract(tmp_path: Path) -> None:
    server = start_server(tmp_path / "fuzz", ["--no-mdns"])
    try:
        command = [
            str(Path(sys.executable).parent / "schemathesis"),
            "--config-file",
            str(CONFIG),
            "run",
            f"{server.url}/api/openapi.json",
            "--header",
            f"Authorization: Bearer {server.admin_token}",
            # Every check runs: that is schemathesis' default once no --checks narrows it, and
            # the config file can then switch one off for one operation.
            "--max-examples",
            "4",
            "--seed",
            "20261123",
        ]
        run = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "NO_COLOR": "1"},
        )
    finally:
        output = stop_server(server)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "failure" not in run.stdout, run.stdout[-3000:]
    assert "Traceback" not in output
