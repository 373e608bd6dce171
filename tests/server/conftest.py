"""Fixtures for server tests that talk to a live server process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import LiveServer


@pytest.fixture
async def http(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the live server, authenticated as its first admin."""
    headers = {"Authorization": f"Bearer {live_server.admin_token}"}
    async with httpx.AsyncClient(base_url=live_server.url, headers=headers, timeout=30) as c:
        yield c
