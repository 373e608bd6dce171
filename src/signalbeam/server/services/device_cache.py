"""Authenticated devices kept in memory, so a sync does not pay a database read to say who it is."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DevicePrincipal:
    """An authenticated device and what sync needs to know about it."""

    pk: int
    tenant_id: int
    device_id: str
    desired_generation: int
    desired_spec: dict[str, Any]


class DeviceCache:
    """Credential hash → device, for a short time; every change to a device in this process
    evicts it at once, and the time limit bounds staleness for changes made elsewhere."""

    def __init__(self, ttl_seconds: float = 30.0, max_entries: int = 200_000) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._entries: dict[str, tuple[float, DevicePrincipal]] = {}
        self._hash_of: dict[int, str] = {}
        # Bumped by every eviction; a lookup that read the database before an eviction
        # must not cache what it read (it may be the credential just revoked).
        self.version = 0

    def get(self, credential_hash: str) -> DevicePrincipal | None:
        """The cached device for this credential, if fresh."""
        entry = self._entries.get(credential_hash)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            self._drop(credential_hash)
            return None
        return entry[1]

    def current(self, pk: int) -> DevicePrincipal | None:
        """The cached, fresh copy of this device, if there is one."""
        credential_hash = self._hash_of.get(pk)
        return None if credential_hash is None else self.get(credential_hash)

    def put(self, credential_hash: str, principal: DevicePrincipal, read_at_version: int) -> None:
        """Remember a device read from the database when `version` was `read_at_version`."""
        if read_at_version != self.version:
            return
        if len(self._entries) >= self._max:
            # Dropping everything is crude but bounded; the next syncs simply read again.
            self._entries.clear()
            self._hash_of.clear()
        self._forget(principal.pk)
        # Spread expiries over the second half of the TTL: a fleet that synced its way into
        # the cache together must not fall out of it together (a burst of database reads).
        ttl = self._ttl * random.uniform(0.5, 1.0)
        self._entries[credential_hash] = (time.monotonic() + ttl, principal)
        self._hash_of[principal.pk] = credential_hash

    def evict(self, *device_pks: int) -> None:
        """Forget these devices (credential rotated, decommissioned, desired state changed)."""
        self.version += 1
        for pk in device_pks:
            self._forget(pk)

    def _forget(self, pk: int) -> None:
        credential_hash = self._hash_of.pop(pk, None)
        if credential_hash is not None:
            self._entries.pop(credential_hash, None)

    def _drop(self, credential_hash: str) -> None:
        _, principal = self._entries.pop(credential_hash)
        self._hash_of.pop(principal.pk, None)
