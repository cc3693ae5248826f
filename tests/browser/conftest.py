"""Browser tests of the web dashboard: Debian's Chromium, headless, driven by Playwright (the PyPI package's
driver, with `executable_path` pointing at the system browser: no browser is downloaded). SkyDriver runs
in-process with its real launcher, database and broker, so the scans are real (`dummy`, tiny nsides).

Every wait is on a page condition with a timeout, never a sleep. Each page records its console errors and
uncaught exceptions; the tests assert there are none where the page did nothing wrong."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from skydriver.app import SkyDriver
from skydriver.auth import Role
from skydriver.dashboard.signin import signin_link

CHROMIUM = os.environ.get("SKYDRIVER_TEST_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
#: a page condition may take this long on a loaded 2-core machine
WAIT_MS = 120_000


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: scripts/setup.sh installs Debian's chromium", pytrace=False
        )
    async with async_playwright() as pw:
        # Playwright gives each launch a fresh temporary profile (its own --user-data-dir), removed at
        # close; every test's context starts without cookies
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Tab:
    """A page of its own browser context (its own cookies), with what its console said."""

    context: BrowserContext
    page: Page
    errors: list[str] = field(default_factory=list)

    def assert_clean_console(self) -> None:
        assert self.errors == [], f"the browser console had errors: {self.errors}"


async def new_tab(browser: Browser, width: int = 1280, height: int = 900) -> Tab:
    context = await browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(WAIT_MS)
    page = await context.new_page()
    tab = Tab(context, page)
    page.on(
        "console",
        lambda msg: tab.errors.append(f"console: {msg.text}") if msg.type == "error" else None,
    )
    page.on("pageerror", lambda exc: tab.errors.append(f"uncaught: {exc}"))
    page.on(
        "response",
        lambda r: (
            tab.errors.append(f"HTTP {r.status} {r.request.method} {r.url}")
            if r.status >= 400
            else None
        ),
    )
    return tab


async def sign_in(tab: Tab, sky: SkyDriver, role: Role = Role.USER, subject: str = "alice") -> str:
    """Sign in as a person would: open a `skydriver dashboard` link; returns the link (used now)."""
    assert sky.token_issuer is not None
    code = sky.token_issuer.issue_signin_code(role, subject=subject, ttl_s=120)
    link = signin_link(sky.settings.url, code)
    await tab.page.goto(link)
    await tab.page.wait_for_url(f"{sky.settings.url}/dashboard")
    await tab.page.wait_for_selector("#live.on")  # the list's stream is open
    return link
