"""The session cookie is `SameSite=Strict`, so it does not come with a navigation from another site. Two such
navigations must still work: the OpenID provider's redirect back to SkyDriver, and a link to a scan in an
alert mail or a chat. For a browser, `localhost` and `127.0.0.1` are different sites: the provider and the
"mail" are served on `localhost`, SkyDriver on `127.0.0.1`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import tornado.httpserver
import tornado.testing
import tornado.web
from playwright.async_api import Browser

from skydriver.app import SkyDriver, start
from skydriver.auth import AuthSettings
from tests import conftest
from tests.conftest import drop_database, headers
from tests.doubles import HeldLauncher
from tests.helpers import scan_body
from tests.openid_provider import FakeOpenIDProvider

from .conftest import new_tab, sign_in


async def submit(sky: SkyDriver, token_headers: dict[str, str]) -> str:
    async with httpx.AsyncClient(base_url=sky.settings.url, headers=token_headers) as api:
        resp = await api.post("/scan", json=scan_body())
        assert resp.status_code == 200, resp.text
        return str(resp.json()["scan_id"])


@pytest.fixture
async def mail() -> AsyncIterator[tuple[str, dict[str, str]]]:
    """Another site (`localhost`) whose page links to whatever the test puts in `links["href"]`."""
    links: dict[str, str] = {}

    class Page(tornado.web.RequestHandler):
        def get(self) -> None:
            self.finish(
                f'<!doctype html><link rel="icon" href="data:,"><a id="link" href="{links["href"]}">the scan</a>'
            )

    sock, port = tornado.testing.bind_unused_port()
    server = tornado.httpserver.HTTPServer(tornado.web.Application([(r"/", Page)]))
    server.add_sockets([sock])
    try:
        yield f"http://localhost:{port}/", links
    finally:
        server.stop()


async def test_a_link_from_another_site_opens_the_scan_signed_in(
    browser: Browser, held_skydriver: SkyDriver, mail: tuple[str, dict[str, str]]
) -> None:
    sky = held_skydriver
    scan_id = await submit(sky, headers(sky))
    tab = await new_tab(browser)
    await sign_in(tab, sky)
    page_url, links = mail
    links["href"] = f"{sky.settings.url}/dashboard/scan/{scan_id}"
    await tab.page.goto(page_url)
    await tab.page.click("#link")
    await tab.page.wait_for_url(f"**/dashboard/scan/{scan_id}")
    await tab.page.wait_for_selector("#live.on")  # the scan page itself, signed in
    tab.assert_clean_console()


@pytest.fixture
async def openid_sky(tmp_path: Path) -> AsyncIterator[tuple[SkyDriver, FakeOpenIDProvider]]:
    provider = FakeOpenIDProvider(host="localhost")
    url = await provider.start()
    auth = AuthSettings(mode="openid", openid_url=url, openid_client_id="dashboard-test")
    sky = await start(
        conftest.test_settings(tmp_path, launcher="held"), {"held": HeldLauncher}, auth
    )
    try:
        yield sky, provider
    finally:
        await sky.stop()
        await provider.stop()
        await drop_database(sky.settings.mongodb_database)


async def test_openid_sign_in_in_the_browser(
    browser: Browser, openid_sky: tuple[SkyDriver, FakeOpenIDProvider]
) -> None:
    sky, provider = openid_sky
    scan_id = await submit(sky, {"Authorization": provider.bearer()})
    tab = await new_tab(browser)
    await tab.page.goto(f"{sky.settings.url}/dashboard/scan/{scan_id}")
    # sign-in page -> provider (another site) -> callback -> the page asked for, signed in
    await tab.page.wait_for_url(f"**/dashboard/scan/{scan_id}")
    await tab.page.wait_for_selector("#live.on")
    assert provider.counts.authorize == 1 and provider.counts.token == 1
    assert await tab.page.inner_text("#who") == "5f0c-uuid"  # the token's subject
    tab.assert_clean_console()
