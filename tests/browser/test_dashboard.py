"""The dashboard in a real browser against a real SkyDriver and real scans (README "Web dashboard")."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page

from skydriver.app import SkyDriver
from skydriver.auth import Role
from tests.conftest import headers, running_skydriver
from tests.helpers import scan_body

from .conftest import SCREENSHOTS, Tab, new_tab, sign_in

#: long enough to watch (about 100 pixels at 0.3 s on 2 workers), short enough for a test
WATCHED = {
    "nsides": {"1": 0, "2": 12, "4": 12},
    "scanner_server_env": {"SKYSCAN_DUMMY_SLEEP_S": 0.3},
}
#: a scan that is still running when it is deleted
SLOW = {"nsides": {"1": 0, "2": 12}, "scanner_server_env": {"SKYSCAN_DUMMY_SLEEP_S": 3.0}}


@pytest.fixture
async def sky(tmp_path: Path) -> AsyncIterator[SkyDriver]:
    """A SkyDriver with the real local launcher: scans run for real (dummy reconstruction)."""
    async with running_skydriver(tmp_path) as sky:
        yield sky


async def api(sky: SkyDriver, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=sky.settings.url, headers=headers(sky), timeout=60) as c:
        return await c.request(method, path, **kwargs)


async def submit(sky: SkyDriver, **overrides: Any) -> str:
    resp = await api(sky, "POST", "/scan", json=scan_body(**overrides))
    assert resp.status_code == 200, resp.text
    return str(resp.json()["scan_id"])


def count_navigations(page: Page) -> list[str]:
    seen: list[str] = []
    page.on("framenavigated", lambda f: seen.append(f.url) if f == page.main_frame else None)
    return seen


async def number(page: Page, selector: str, attribute: str) -> int:
    value = await page.get_attribute(selector, attribute)
    return int(value or 0)


async def wait_above(page: Page, selector: str, attribute: str, floor: int) -> int:
    """Until `selector`'s numeric `attribute` exceeds `floor` (no reload: the page updates itself)."""
    await page.wait_for_function(
        "([sel, attr, floor]) => Number(document.querySelector(sel)?.getAttribute(attr) || 0) > floor",
        arg=[selector, attribute, floor],
    )
    return await number(page, selector, attribute)


async def screenshot(page: Page, name: str, width: int) -> None:
    """A full-page screenshot at `width` CSS pixels (a phone's 390, a laptop's 1280); a skymap on the
    page is redrawn for the new width first (the page does it on resize)."""
    has_map = await page.locator("#map-fig[data-draws]").count() > 0
    drawn = await number(page, "#map-fig", "data-draws") if has_map else 0
    size = {"width": width, "height": 900 if width > 600 else 844}
    if page.viewport_size != size:
        await page.set_viewport_size(size)  # type: ignore[arg-type]
        if has_map:
            await wait_above(page, "#map-fig", "data-draws", drawn)
    await page.evaluate(
        "() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))"
    )
    await page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)


def best_fit_deg(result: dict[str, Any]) -> tuple[float, float]:
    """The best pixel of a result, as the scanner's products define it (smallest llh), in degrees."""
    import healpy

    best = min(
        (float(row[1]), int(key.split("-")[1]), int(row[0]))
        for key, block in result.items()
        for row in block["data"]
        if row[1] != "<skyreader.nan>"
    )
    theta, phi = healpy.pix2ang(best[1], best[2])
    return math.degrees(phi), 90 - math.degrees(theta)


async def test_a_scan_live_from_list_to_final_skymap(browser: Browser, sky: SkyDriver) -> None:
    """The list shows a new scan without a reload; its page's progress advances and its skymap appears,
    is redrawn after a partial result, and ends with the final best fit; screenshots at two widths."""
    tab = await new_tab(browser)
    page = tab.page
    await sign_in(tab, sky)
    navigations = count_navigations(page)
    scan_id = await submit(sky, **WATCHED)
    row = f'tr[data-scan-id="{scan_id}"]'
    await page.wait_for_selector(row)  # pushed by the event stream
    assert navigations == [], "the list reloaded"
    # search and filters work on what is shown
    await page.fill("#q", scan_id[:10])
    assert await page.locator("#rows tr").count() == 1
    await page.fill("#q", "no-such-scan-anywhere")
    await page.wait_for_selector("#empty:not([hidden])")
    await page.fill("#q", "")
    await page.select_option("#state", "done")
    await page.wait_for_selector("#empty:not([hidden])")  # it is not done yet
    await page.select_option("#state", "")
    # keyboard: the scan's link is reachable and opens its page
    await page.focus(f"{row} td[data-label='Scan'] a")
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"**/dashboard/scan/{scan_id}")
    nav_on_scan_page = len(navigations)
    await page.wait_for_selector("#live.on")

    first = await wait_above(page, "#total", "data-done", 0)
    later = await wait_above(page, "#total", "data-done", first)
    assert later > first
    await page.wait_for_selector("#map-fig[data-draws]")
    drawn = await number(page, "#map-fig", "data-draws")
    pixels = await number(page, "#map-fig", "data-pixels")
    await wait_above(page, "#map-fig", "data-draws", drawn)  # redrawn at the next result
    assert await number(page, "#map-fig", "data-pixels") >= pixels
    await page.wait_for_selector('#map-fig[data-kind="final"]')
    await page.wait_for_selector('#state:has-text("SCAN_HAS_FINAL_RESULT")')
    best_text = await page.inner_text("#bestfit")
    assert best_text.startswith("Best fit: RA "), best_text
    result = (await api(sky, "GET", f"/scan/{scan_id}/result")).json()
    assert result["is_final"]
    want_ra, want_dec = best_fit_deg(result["skyscan_result"])
    assert float(await page.get_attribute("#bestfit", "data-ra") or "nan") == pytest.approx(
        want_ra, abs=1e-3
    )
    assert float(await page.get_attribute("#bestfit", "data-dec") or "nan") == pytest.approx(
        want_dec, abs=1e-3
    )
    assert "finished" in await page.inner_text("#eta")
    assert len(navigations) == nav_on_scan_page, "the scan page reloaded"
    # every product link points at SkyDriver itself, and the result link answers with the session
    hrefs = await page.eval_on_selector_all("#products a", "as => as.map((a) => a.href)")
    assert hrefs and all(h.startswith(sky.settings.url) for h in hrefs)

    for width in (1280, 390):
        await screenshot(page, "scan", width)
    await page.goto(f"{sky.settings.url}/dashboard")
    await page.wait_for_selector(f"{row} .badge.done")
    for width in (1280, 390):
        await screenshot(page, "list", width)
    tab.assert_clean_console()


async def test_delete_works_for_a_user_and_is_refused_for_a_viewer(
    browser: Browser, sky: SkyDriver
) -> None:
    scan_id = await submit(sky, **SLOW)
    viewer = await new_tab(browser)
    await sign_in(viewer, sky, Role.VIEWER, subject="bob")
    assert await viewer.page.inner_text("#role") == "read-only"
    await viewer.page.goto(f"{sky.settings.url}/dashboard/scan/{scan_id}")
    await viewer.page.wait_for_selector("#state:not(:has-text('…'))")
    assert await viewer.page.is_hidden("#actions"), "a viewer is offered delete/rescan"
    # the API refuses a viewer's delete even with the page's own CSRF token
    refused = await viewer.page.evaluate(
        """async (id) => {
            const cfg = JSON.parse(document.getElementById('config').textContent);
            const r = await fetch(`/scan/${id}`, {method: 'DELETE', headers: {[cfg.csrf_header]: cfg.csrf}});
            return [r.status, await r.json()];
        }""",
        scan_id,
    )
    assert refused == [403, {"code": 403, "error": "authorization failed: wrong role"}]
    assert (await api(sky, "GET", f"/scan/{scan_id}/manifest")).status_code == 200  # not deleted

    user = await new_tab(browser)
    await sign_in(user, sky)
    await user.page.goto(f"{sky.settings.url}/dashboard/scan/{scan_id}")
    await user.page.wait_for_selector("#actions:not([hidden])")
    await user.page.click("#delete")
    await user.page.click("#delete-ok")
    await user.page.wait_for_function(
        "() => document.getElementById('action-msg').textContent.length > 0"
    )
    assert (await user.page.inner_text("#action-msg")).startswith("Deleted"), (
        await user.page.inner_text("#action-msg")
    )
    await user.page.wait_for_selector("#state:has-text('deleted')")
    manifest = (await api(sky, "GET", f"/scan/{scan_id}/manifest?include_deleted=true")).json()
    assert manifest["is_deleted"] and manifest["deleted_by"] == "alice"
    user.assert_clean_console()


async def test_sign_in_is_required_and_a_link_works_once(
    browser: Browser, held_skydriver: SkyDriver
) -> None:
    sky = held_skydriver  # (the scan needs no instance here)
    scan_id = await submit(sky)
    stranger = await new_tab(browser)
    await stranger.page.goto(f"{sky.settings.url}/dashboard/scan/{scan_id}")
    await stranger.page.wait_for_url("**/dashboard/signin?next=*")
    assert "skydriver dashboard" in await stranger.page.inner_text("main")
    stranger.assert_clean_console()

    first = await new_tab(browser)
    link = await sign_in(first, sky)
    again = await new_tab(browser)
    await again.page.goto(link)
    await again.page.wait_for_selector("#signin-status.error")
    assert "already used" in await again.page.inner_text("#signin-status")
    assert "#code=" not in again.page.url  # the code left the address bar
    # signing out ends the session: the next page load is sent to sign-in
    await first.page.click("#signout")
    await first.page.wait_for_url("**/dashboard/signin")
    await first.page.goto(f"{sky.settings.url}/dashboard")
    await first.page.wait_for_url("**/dashboard/signin?next=*")
    first.assert_clean_console()


async def test_csrf_token_is_required_for_changes(
    browser: Browser, held_skydriver: SkyDriver
) -> None:
    sky = held_skydriver
    scan_id = await submit(sky)
    tab: Tab = await new_tab(browser)
    await sign_in(tab, sky)
    answers = await tab.page.evaluate(
        """async (id) => {
            const cfg = JSON.parse(document.getElementById('config').textContent);
            const call = async (hdrs) => {
                const r = await fetch(`/scan/${id}/actions/rescan`, {method: 'POST', headers: hdrs, body: '{}'});
                return [r.status, (await r.json()).error || 'ok'];
            };
            return [await call({}), await call({[cfg.csrf_header]: 'x' + cfg.csrf}),
                    await call({[cfg.csrf_header]: cfg.csrf})];
        }""",
        scan_id,
    )
    csrf_failed = "CSRF check failed: this request needs the page's X-CSRF-Token (reload the page)"
    assert answers == [[403, csrf_failed], [403, csrf_failed], [200, "ok"]]
