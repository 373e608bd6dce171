"""First start: migrate the database, create the default tenant and its first admin."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from signalbeam.server.db.migrate import upgrade_to_head
from signalbeam.server.runtime import Runtime
from signalbeam.server.services import tenants

ADMIN_TOKEN_FILE = "admin-token"  # noqa: S105 - a file name, not a secret


@dataclass(frozen=True)
class Startup:
    """What start-up did: the first admin's token exists only when it was just created."""

    admin_username: str
    admin_token: str | None
    token_file: Path


def write_secret_file(path: Path, secret: str) -> None:
    """Write a secret readable only by its owner (mode 0600), replacing any old one."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")


async def prepare(runtime: Runtime) -> Startup:
    """Migrate, then create the default tenant and admin when the database is empty."""
    await upgrade_to_head(runtime.engine)
    token_file = runtime.settings.data_dir / ADMIN_TOKEN_FILE
    created = await tenants.ensure_default(runtime)
    if created is None:
        return Startup(tenants.FIRST_ADMIN, None, token_file)
    write_secret_file(token_file, created.admin_token)
    return Startup(created.admin.username, created.admin_token, token_file)
