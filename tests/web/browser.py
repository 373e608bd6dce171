"""Driving chromium: launch it the Debian way, sign in, wait for the page to settle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tests.web.conftest import ADMIN_PASSWORD, CHROMIUM, CHROMIUM_ARGS, require_playwright

# Every browser test module imports this one first, so this decides for all of them.
require_playwright()

from playwright.async_api import (  # noqa: E402 - only once Playwright is known to be there
    Browser,
    Page,
    ViewportSize,
    async_playwright,
    expect,
)

__all__ = ["TABLET", "Page", "chromium", "expect", "signed_in", "snap"]

LAPTOP: ViewportSize = {"width": 1366, "height": 900}
TABLET: ViewportSize = {"width": 820, "height": 1180}


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Debian's chromium through Playwright (never a downloaded browser)."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


@asynccontextmanager
async def signed_in(
    browser: Browser,
    url: str,
    username: str = "admin",
    password: str = ADMIN_PASSWORD,
    viewport: ViewportSize | None = None,
) -> AsyncIterator[Page]:
    """A fresh browser context signed in through the login form."""
    context = await browser.new_context(viewport=viewport or LAPTOP)
    page = await context.new_page()
    errors: list[str] = []
    # A Content-Security-Policy violation or a script error shows up here; none may happen.
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        await page.goto(url + "/")
        await page.get_by_label("Username").fill(username)
        await page.get_by_label("Password", exact=True).fill(password)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        yield page
        assert [e for e in errors if not _expected(e)] == [], "errors in the browser console"
    finally:
        await context.close()


def _expected(message: str) -> bool:
    # Forms that fail validation answer 4xx on purpose; chromium logs those as errors.
    return "Failed to load resource" in message and (" 4" in message or "status of 4" in message)


async def snap(page: Page, directory: Path, name: str) -> None:
    """Save a full-page screenshot for reviewers."""
    await page.screenshot(path=str(directory / f"{name}.png"), full_page=True)
