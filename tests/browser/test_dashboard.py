"""The dashboard in a real browser against a real SkyDriver and real scans (README "Web dashboard")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser

from skydriver.app import SkyDriver
from skydriver.auth import Role
from tests.conftest import headers, running_skydriver
from tests.helpers import scan_body

from .conftest import SCREENSHOTS, WAIT_MS, new_tab, sign_in


@pytest.fixture
async def sky(tmp_path: Path) -> AsyncIterator[SkyDriver]:
    """A SkyDriver with the real local launcher: scans run for real (dummy reconstruction)."""
    async with running_skydriver(tmp_path) as sky:
        yield sky


async def submit(sky: SkyDriver, **overrides: object) -> str:
    async with httpx.AsyncClient(base_url=sky.settings.url, headers=headers(sky), timeout=60) as api:
        resp = await api.post("/scan", json=scan_body(**overrides))
        assert resp.status_code == 200, resp.text
        return str(resp.json()["scan_id"])


async def test_smoke(browser: Browser, sky: SkyDriver) -> None:
    tab = await new_tab(browser)
    await sign_in(tab, sky)
    scan_id = await submit(sky)
    await tab.page.wait_for_selector(f'tr[data-scan-id="{scan_id}"]')
    await tab.page.click(f'tr[data-scan-id="{scan_id}"] td[data-label="Scan"] a')
    await tab.page.wait_for_selector('#map-fig[data-kind="final"]', timeout=WAIT_MS)
    await tab.page.screenshot(path=str(SCREENSHOTS / "smoke.png"), full_page=True)
    tab.assert_clean_console()
    assert Role.USER
