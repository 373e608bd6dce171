"""Before serving: make sure the secrets key file is the key stored config secrets use.

A server started with another key file (a lost data dir, a wrong path) could not push any
config with secrets. It says so once, naming the file, and does not start.
"""

from __future__ import annotations

from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncConnection

from signalbeam.server.db.models import ConfigLayer
from signalbeam.server.db.session import create_engine
from signalbeam.server.secrets_box import SecretsBox
from signalbeam.server.services.config_delivery import secret_context

# Layer versions read to find one with a secret; any one proves the key.
SAMPLE = 100


async def verify_secrets_key(database_url: str, box: SecretsBox) -> None:
    """Raise SecretsKeyError when a stored secret does not open with `box`'s key."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            await _verify(connection, box)
    finally:
        await engine.dispose()


async def _verify(connection: AsyncConnection, box: SecretsBox) -> None:
    if not await connection.run_sync(lambda c: inspect(c).has_table(ConfigLayer.__tablename__)):
        return
    query = select(
        ConfigLayer.tenant_id, ConfigLayer.scope, ConfigLayer.name, ConfigLayer.secrets
    ).order_by(ConfigLayer.id.desc())
    for tenant_id, scope, name, secrets in (await connection.execute(query.limit(SAMPLE))).all():
        for key, sealed in (secrets or {}).items():
            box.open(str(sealed), secret_context(tenant_id, scope, name, key))
            return
