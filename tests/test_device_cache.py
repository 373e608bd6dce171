"""The in-memory device cache never outlives a revoked or rotated credential."""

from __future__ import annotations

from signalbeam.server.services.device_cache import DeviceCache, DevicePrincipal


def principal(pk: int = 1, generation: int = 0) -> DevicePrincipal:
    return DevicePrincipal(pk, 1, f"d{pk}", generation, {})


def test_put_get_evict() -> None:
    cache = DeviceCache()
    cache.put("h1", principal(), cache.version)
    assert cache.get("h1") == principal()
    cache.evict(1)
    assert cache.get("h1") is None


def test_a_read_from_before_an_eviction_is_not_cached() -> None:
    cache = DeviceCache()
    seen = cache.version  # a request starts reading the database...
    cache.evict(1)  # ...while the device is decommissioned and evicted
    cache.put("h1", principal(), seen)  # ...and then tries to cache what it read
    assert cache.get("h1") is None


def test_a_new_credential_replaces_the_old_one() -> None:
    cache = DeviceCache()
    cache.put("old", principal(), cache.version)
    cache.put("new", principal(generation=2), cache.version)
    assert cache.get("old") is None
    assert cache.get("new") == principal(generation=2)


def test_expired_entries_are_not_returned() -> None:
    cache = DeviceCache(ttl_seconds=-1)
    cache.put("h1", principal(), cache.version)
    assert cache.get("h1") is None


def test_size_stays_bounded() -> None:
    cache = DeviceCache(max_entries=10)
    for pk in range(25):
        cache.put(f"h{pk}", principal(pk), cache.version)
    assert cache.get("h24") is not None
    assert sum(cache.get(f"h{pk}") is not None for pk in range(25)) <= 10


def test_current_finds_the_fresh_copy_by_device_until_evicted_or_expired() -> None:
    cache = DeviceCache()
    cache.put("h1", principal(generation=3), cache.version)
    assert cache.current(1) == principal(generation=3)
    assert cache.current(2) is None
    cache.evict(1)
    assert cache.current(1) is None, "a watch after a change must read the database"
    stale = DeviceCache(ttl_seconds=-1)
    stale.put("h1", principal(), stale.version)
    assert stale.current(1) is None
