"""Where the CLI keeps the server URL and API token: one TOML file only you can read."""

from __future__ import annotations

import json
import os
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

import httpx

from signalbeam.cli.output import CliError

CONFIG_FILE = "config.toml"
LOGIN_HINT = "signalbeam login --server URL --token TOKEN"


@dataclass(frozen=True)
class Credentials:
    """The server to talk to and the API token to send; `token_id` when the CLI issued it."""

    server: str
    token: str
    token_id: int | None = None


def config_path() -> Path:
    """`$SIGNALBEAM_CONFIG_DIR/config.toml`, else under `$XDG_CONFIG_HOME` or `~/.config`."""
    explicit = os.environ.get("SIGNALBEAM_CONFIG_DIR")
    if explicit:
        return Path(explicit) / CONFIG_FILE
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "signalbeam" / CONFIG_FILE


def server_url(text: str) -> str:
    """A server URL without its trailing slash, or a CliError saying how to write one."""
    cleaned = text.strip().rstrip("/")
    try:
        url = httpx.URL(cleaned)
    except httpx.InvalidURL as err:
        raise CliError(f'"{text}" is not a server URL ({err})') from err
    if url.scheme not in ("http", "https") or not url.host:
        raise CliError(f'"{text}" is not a server URL; write it like http://127.0.0.1:8420')
    return cleaned


def load() -> Credentials | None:
    """The stored credentials, or None when nobody logged in."""
    path = config_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise CliError(
            f"cannot read {path} ({err}); fix it, or delete it and log in again"
        ) from err
    server, token, token_id = data.get("server"), data.get("token"), data.get("token_id")
    if not isinstance(server, str) or not isinstance(token, str):
        raise CliError(f"{path} lacks server or token; log in again with {LOGIN_HINT}")
    return Credentials(server, token, token_id if isinstance(token_id, int) else None)


def _toml_value(value: str | int) -> str:
    # JSON strings and integers are valid TOML, except that TOML also wants DEL escaped.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def save(credentials: Credentials) -> Path:
    """Write the credentials atomically with mode 0600 and return the file's path."""
    path = config_path()
    values: dict[str, str | int] = {"server": credentials.server, "token": credentials.token}
    if credentials.token_id is not None:
        values["token_id"] = credentials.token_id
    text = "".join(f"{key} = {_toml_value(value)}\n" for key, value in values.items())
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # mkstemp creates the file 0600, so the token is never readable by others, not even briefly.
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".config-", suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except OSError as err:
        raise CliError(f"cannot save the login to {path} ({err.strerror or err})") from err
    return path


def remove() -> Credentials | None:
    """Delete the stored credentials and return what they were."""
    stored = load()
    config_path().unlink(missing_ok=True)
    return stored


def resolve() -> Credentials:
    """The credentials to use: `SIGNALBEAM_SERVER`/`SIGNALBEAM_TOKEN` override the stored ones."""
    stored = load()
    env_server = os.environ.get("SIGNALBEAM_SERVER")
    server = server_url(env_server) if env_server else (stored.server if stored else None)
    token = os.environ.get("SIGNALBEAM_TOKEN")
    if not token and stored is not None and stored.server == server:
        # The stored token belongs to the stored server; never send it anywhere else.
        token = stored.token
    if not server or not token:
        where = f" to {server}" if server else ""
        raise CliError(f"not logged in{where}; run {LOGIN_HINT}")
    token_id = stored.token_id if stored and stored.token == token else None
    return Credentials(server, token, token_id)
