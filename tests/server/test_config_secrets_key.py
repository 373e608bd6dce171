"""The secrets key lives outside the database: created 0600 on first start, and a server
started with another key (or a broken file) says so in one line naming the file."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx

from tests.components import free_port
from tests.conftest import start_server, stop_server


def serve_once(data_dir: Path, database_url: str, *extra: str, **env: str) -> tuple[int, str]:
    """Run `signalbeam server` expecting it to refuse to start; its exit code and output."""
    command = [sys.executable, "-m", "signalbeam", "server", "--data-dir", str(data_dir)]
    command += ["--port", str(free_port()), "--no-mdns", "--database-url", database_url, *extra]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=60, env={**os.environ, **env}
    )
    return done.returncode, done.stdout + done.stderr


def test_a_wrong_or_broken_key_file_stops_the_server_naming_it(
    tmp_path: Path, database_url: str
) -> None:
    data_dir = tmp_path / "server"
    server = start_server(data_dir, ["--no-mdns", "--database-url", database_url])
    try:
        headers = {"Authorization": f"Bearer {server.admin_token}"}
        with httpx.Client(base_url=server.url, headers=headers) as client:
            written = client.patch(
                "/api/v1/config/tenant", json={"secrets": {"DB_PASSWORD": "open-sesame-42"}}
            )
            assert written.status_code == 200, written.text
    finally:
        output = stop_server(server)
    assert "open-sesame-42" not in output
    key_file = data_dir / "secrets.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    original = key_file.read_text()

    key_file.write_text(os.urandom(32).hex() + "\n")
    code, said = serve_once(data_dir, database_url)
    assert code == 1 and "Traceback" not in said, said
    assert f"error: stored config secrets do not open with the key in {key_file}" in said

    broken = tmp_path / "elsewhere.key"
    broken.write_text("not a key\n")
    code, said = serve_once(data_dir, database_url, "--secrets-key-file", str(broken))
    assert code == 1 and "Traceback" not in said, said
    assert f"secrets key file {broken} does not hold a hex key" in said

    # The original key, kept elsewhere and named by the environment, opens them again.
    kept = tmp_path / "kept.key"
    kept.write_text(original)
    server = start_server(
        data_dir,
        ["--no-mdns", "--database-url", database_url],
        env={"SIGNALBEAM_SECRETS_KEY_FILE": str(kept)},
    )
    stop_server(server)
