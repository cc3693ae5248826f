"""Signing in to the dashboard and what a session may do, over HTTP against the real SkyDriver (README
"Web dashboard"): one-time local codes, the session cookie's flags, CSRF on every change made with the
cookie, roles exactly as for tokens, sign-out, and the OpenID authorization-code flow with PKCE against a
fake provider."""

from __future__ import annotations

from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from skydriver.app import SkyDriver, start
from skydriver.auth import AuthSettings, Role
from skydriver.dashboard.sessions import COOKIE, CSRF_FAILED, SECURE_COOKIE
from skydriver.dashboard.signin import STATE_COOKIE
from tests import conftest
from tests.conftest import drop_database, headers, running_skydriver
from tests.doubles import HeldLauncher
from tests.helpers import scan_body
from tests.openid_provider import FakeOpenIDProvider


def set_cookies(resp: httpx.Response) -> dict[str, dict[str, str]]:
    """name -> attributes (lower-cased names; flags present as "") of every Set-Cookie."""
    out: dict[str, dict[str, str]] = {}
    for raw in resp.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(raw)
        for name, morsel in jar.items():
            attrs = {k.lower(): str(v) for k, v in morsel.items() if v}
            flags = {p.strip().lower() for p in raw.split(";")[1:]}
            attrs.update({f: "" for f in ("httponly", "secure") if f in flags})
            out[name] = {"value": morsel.value, **attrs}
    return out


async def exchange(
    sky: SkyDriver, role: Role = Role.USER, subject: str = "alice"
) -> httpx.Response:
    assert sky.token_issuer is not None
    code = sky.token_issuer.issue_signin_code(role, subject=subject, ttl_s=60)
    # the listening address (the public URL may name a proxy in front)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sky.port}") as client:
        return await client.post("/dashboard/session", json={"code": code})


async def session_client(sky: SkyDriver, role: Role = Role.USER) -> tuple[httpx.AsyncClient, str]:
    """A client holding a session cookie (no bearer token), and the session's CSRF token."""
    resp = await exchange(sky, role)
    assert resp.status_code == 200, resp.text
    cookie = set_cookies(resp)[COOKIE]["value"]
    client = httpx.AsyncClient(base_url=sky.settings.url, cookies={COOKIE: cookie}, timeout=30)
    page = await client.get("/dashboard")  # (the client is opened by its first request)
    assert page.status_code == 200
    csrf = page.text.split('"csrf": "', 1)[1].split('"', 1)[0]
    return client, csrf


@pytest.fixture
async def sky(tmp_path: Path) -> AsyncIterator[SkyDriver]:
    async with running_skydriver(tmp_path, {"held": HeldLauncher}, launcher="held") as sky:
        yield sky


async def test_a_signin_code_works_once_and_sets_a_strict_httponly_cookie(sky: SkyDriver) -> None:
    assert sky.token_issuer is not None
    code = sky.token_issuer.issue_signin_code(Role.USER, subject="alice", ttl_s=60)
    async with httpx.AsyncClient(base_url=sky.settings.url) as client:
        first = await client.post(
            "/dashboard/session", json={"code": code, "next": "/dashboard/scan/x"}
        )
        again = await client.post("/dashboard/session", json={"code": code})
        foreign = await client.post(
            "/dashboard/session", json={"code": code}, headers={"Origin": "http://evil.example"}
        )
        token = sky.token_issuer.issue_token(Role.USER, subject="alice", ttl_s=60)
        not_a_code = await client.post("/dashboard/session", json={"code": token})
        expired = await client.post(
            "/dashboard/session",
            json={"code": sky.token_issuer.issue_signin_code(Role.USER, subject="a", ttl_s=-1)},
        )
        code_as_token = await client.get(
            "/scans/summaries", headers={"Authorization": f"Bearer {code}"}
        )
    assert first.status_code == 200, first.text
    assert first.json() == {"next": "/dashboard/scan/x", "subject": "alice", "roles": ["user"]}
    cookie = set_cookies(first)[COOKIE]
    assert "httponly" in cookie and cookie["samesite"] == "Strict" and cookie["path"] == "/"
    assert "secure" not in cookie  # http: a Secure cookie would never come back
    assert int(cookie["max-age"]) == AuthSettings().session_ttl_s
    assert again.status_code == 403 and "already used" in again.json()["error"]
    assert foreign.status_code == 403
    for refused in (not_a_code, expired):
        assert refused.status_code == 403 and "invalid or expired" in refused.json()["error"]
    assert code_as_token.status_code == 403  # a sign-in code is no bearer token


async def test_the_session_opens_the_api_with_the_roles_of_its_sign_in(sky: SkyDriver) -> None:
    async with httpx.AsyncClient(base_url=sky.settings.url, headers=headers(sky)) as api:
        scan_id = (await api.post("/scan", json=scan_body())).json()["scan_id"]
    user, csrf = await session_client(sky, Role.USER)
    user_cookie = str(user.cookies[COOKIE])
    viewer, viewer_csrf = await session_client(sky, Role.VIEWER)
    try:
        for client in (user, viewer):
            assert (await client.get("/scans/summaries")).status_code == 200
            assert (await client.get(f"/scan/{scan_id}/summary")).status_code == 200
            async with client.stream("GET", f"/scan/{scan_id}/events") as stream:
                assert stream.status_code == 200  # EventSource sends only the cookie
        # a viewer changes nothing, even with its CSRF token
        refused = await viewer.post(
            f"/scan/{scan_id}/actions/rescan", json={}, headers={"X-CSRF-Token": viewer_csrf}
        )
        assert (
            refused.status_code == 403
            and refused.json()["error"] == "authorization failed: wrong role"
        )
        # a user's change needs the CSRF token, from this origin
        for extra in (
            {},
            {"X-CSRF-Token": "nope"},
            {"X-CSRF-Token": csrf, "Origin": "http://x.example"},
        ):
            resp = await user.post(f"/scan/{scan_id}/actions/rescan", json={}, headers=extra)
            assert resp.status_code == 403 and resp.json()["error"] == CSRF_FAILED, extra
        made = await user.post(
            f"/scan/{scan_id}/actions/rescan",
            json={},
            headers={"X-CSRF-Token": csrf, "Origin": sky.settings.url},
        )
        assert made.status_code == 200, made.text
        # no session is worth a system route
        assert (await user.get(f"/scan/{scan_id}/workforce")).status_code == 403
        # signing out ends the session at once (also for a copy of the cookie held elsewhere)
        assert (await user.delete("/dashboard/session")).status_code == 403  # no CSRF token
        out = await user.delete("/dashboard/session", headers={"X-CSRF-Token": csrf})
        assert out.status_code == 204
        assert set_cookies(out)[COOKIE]["value"] == ""  # the browser drops it
        copy = httpx.AsyncClient(base_url=sky.settings.url, cookies={COOKIE: user_cookie})
        async with copy:
            assert (await copy.get("/scans/summaries")).status_code == 403
            page = await copy.get("/dashboard")
            assert page.status_code == 302 and page.headers["Location"].startswith(
                "/dashboard/signin"
            )
    finally:
        await user.aclose()
        await viewer.aclose()


async def test_a_bearer_token_wins_over_a_cookie(sky: SkyDriver) -> None:
    viewer, _ = await session_client(sky, Role.VIEWER)
    try:
        # the user token is used (and needs no CSRF token: it is not a cookie a browser sends by itself)
        resp = await viewer.post("/scan", json=scan_body(), headers=headers(sky))
    finally:
        await viewer.aclose()
    assert resp.status_code == 200


async def test_https_deployments_mark_the_cookie_secure(tmp_path: Path) -> None:
    async with running_skydriver(
        tmp_path, {"held": HeldLauncher}, launcher="held", public_url="https://skydriver.example"
    ) as sky:
        resp = await exchange(sky)
    assert resp.status_code == 200
    cookie = set_cookies(resp)[SECURE_COOKIE]
    assert "secure" in cookie and "httponly" in cookie and cookie["samesite"] == "Strict"


@pytest.fixture
async def openid_sky(tmp_path: Path) -> AsyncIterator[tuple[SkyDriver, FakeOpenIDProvider]]:
    provider = FakeOpenIDProvider()
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


async def test_openid_sign_in_is_the_code_flow_with_pkce(
    openid_sky: tuple[SkyDriver, FakeOpenIDProvider],
) -> None:
    sky, provider = openid_sky
    async with httpx.AsyncClient(base_url=sky.settings.url) as browser:
        start_ = await browser.get("/dashboard/signin", params={"next": "/dashboard/scan/abc"})
        assert start_.status_code == 302
        to_provider = urlsplit(start_.headers["Location"])
        query = {k: v[0] for k, v in parse_qs(to_provider.query).items()}
        assert query["response_type"] == "code" and query["code_challenge_method"] == "S256"
        assert query["client_id"] == "dashboard-test"
        assert query["redirect_uri"] == f"{sky.settings.url}/dashboard/signin/callback"
        state_cookie = set_cookies(start_)[STATE_COOKIE]
        # Lax: it must come back with the provider's cross-site redirect; only for the callback
        assert (
            state_cookie["samesite"] == "Lax"
            and state_cookie["path"] == "/dashboard/signin/callback"
        )
        assert state_cookie["value"] == query["state"]
        back = await browser.get(start_.headers["Location"])  # the provider approves
        assert back.status_code == 302
        callback = back.headers["Location"]
        done = await browser.get(callback)
        assert done.status_code == 200, done.text
        assert (
            'url=/dashboard/scan/abc"' in done.text
        )  # a page that goes on (same-site: Strict cookie)
        cookie = set_cookies(done)[COOKIE]
        assert cookie["samesite"] == "Strict" and "httponly" in cookie
        assert provider.token_requests[-1]["code_verifier"]  # PKCE: the provider checked it
        summaries = await browser.get("/scans/summaries", cookies={COOKIE: cookie["value"]})
        assert summaries.status_code == 200
        # the same callback again: the sign-in it finished is gone
        replay = await browser.get(callback, cookies={STATE_COOKIE: state_cookie["value"]})
        assert replay.status_code == 403
    # a callback in a browser that did not start the sign-in (login CSRF) is refused
    async with (
        httpx.AsyncClient(base_url=sky.settings.url) as victim,
        httpx.AsyncClient(base_url=sky.settings.url) as attacker,
    ):
        started = await attacker.get("/dashboard/signin")
        back = await attacker.get(started.headers["Location"])
        forced = await victim.get(back.headers["Location"])
        assert forced.status_code == 403 and COOKIE not in set_cookies(forced)


async def test_openid_accounts_without_a_dashboard_role_are_refused(
    openid_sky: tuple[SkyDriver, FakeOpenIDProvider],
) -> None:
    sky, provider = openid_sky
    provider.signin_claims = {"resource_access": {"account": {"roles": ["view-profile"]}}}
    async with httpx.AsyncClient(base_url=sky.settings.url) as browser:
        started = await browser.get("/dashboard/signin")
        back = await browser.get(started.headers["Location"])
        done = await browser.get(back.headers["Location"])
    assert done.status_code == 403 and "neither the users nor the viewers role" in done.text
    assert COOKIE not in set_cookies(done)
    provider.signin_claims = {"resource_access": {"skydriver-external": {"roles": ["viewers"]}}}
    async with httpx.AsyncClient(base_url=sky.settings.url) as browser:
        started = await browser.get("/dashboard/signin")
        back = await browser.get(started.headers["Location"])
        done = await browser.get(back.headers["Location"])
        assert done.status_code == 200
        cookie = set_cookies(done)[COOKIE]["value"]
        page = await browser.get("/dashboard", cookies={COOKIE: cookie})
    assert '"roles": ["viewer"]' in page.text and '"can_write": false' in page.text
