"""The web dashboard: its pages, its static assets, and signing in and out (see `skydriver.dashboard`).

Pages carry no scan data: they are shells whose scripts read the API with the session cookie, so roles are
enforced by the API routes exactly as for bearer tokens. A page load without a valid session is sent to the
sign-in page; a page load that comes from another site (a link in an alert mail) arrives without the
`SameSite=Strict` cookie, so it gets a page that loads the same address again from here, which carries it."""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import tornado.template
import tornado.web

from skyscan_contract.errors import Forbidden, InvalidRequest, ScanNotFound

from ..auth import DenialReason, Principal, Role, authorization_failed, public
from ..dashboard import levels, summary
from ..dashboard.sessions import CSRF_HEADER, SESSION_ROLES
from ..dashboard.signin import (
    CALLBACK_PATH,
    OPENID_SIGNIN_TTL_S,
    STATE_COOKIE,
    LocalSignIn,
    OpenIDSignIn,
    SignInError,
    pkce_pair,
)
from .base import BaseHandler

LOG = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parents[1] / "dashboard"
STATIC_DIR = HERE / "static"
TEMPLATES = tornado.template.Loader(str(HERE / "templates"))

#: what the pages may load and talk to: only SkyDriver itself (no CDN, no inline script)
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
ALREADY_USED = (
    "this sign-in link was already used: run `skydriver dashboard` for a new one "
    "(each link works once)"
)
INVALID_CODE = (
    "this sign-in link is invalid or expired: run `skydriver dashboard` for a new one "
    "(a link works for a short while, once)"
)


def safe_next(raw: str | None) -> str:
    """Where to go after signing in: a path of the dashboard, nothing else (no open redirect)."""
    if (
        raw
        and raw.startswith("/dashboard")
        and not raw.startswith("//")
        and "\\" not in raw
        and "://" not in raw
        and not raw.startswith("/dashboard/signin")
    ):
        return raw
    return "/dashboard"


class _HTML(BaseHandler):
    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Content-Security-Policy", CSP)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "same-origin")
        self.set_header("Cache-Control", "no-store")

    def page(self, template: str, **values: Any) -> None:
        self.finish(TEMPLATES.load(template).generate(static=self.static, **values))

    def static(self, path: str) -> str:
        return f"/dashboard/static/{path}?v={DashboardStaticHandler.version(path)}"

    def bounce(self, target: str) -> None:
        """A page that goes on to `target` (a same-site navigation, which carries the Strict cookie)."""
        self.page("bounce.html", target=target)

    def set_session_cookie(self, secret: str) -> None:
        sessions = self.ctx.sessions
        assert sessions is not None
        self.set_cookie(
            sessions.cookie_name, secret, max_age=sessions.ttl_s, **sessions.cookie_options()
        )


class _Page(_HTML):
    """A dashboard page: signed-in people (user or viewer) only."""

    async def viewer(self) -> Principal | None:
        """Who is looking, or None after answering (sign-in redirect, bounce or 403)."""
        try:
            principal = await self.current_principal()
        except Forbidden:
            principal = None
        if principal is None:
            cookie = self.session_cookie()
            if cookie is None and self.request.headers.get("Sec-Fetch-Site") == "cross-site":
                self.bounce(self.request.uri or "/dashboard")
                return None
            self.redirect("/dashboard/signin?" + urlencode({"next": self.request.uri or ""}))
            return None
        if principal.roles.isdisjoint(SESSION_ROLES):
            raise authorization_failed(DenialReason.WRONG_ROLE)
        return principal

    def config(self, principal: Principal, **extra: Any) -> str:
        """What the page's scripts need, as JSON for a non-executed <script type=application/json>."""
        session = self.session
        data = {
            "subject": principal.subject,
            "roles": sorted(r.value for r in principal.roles),
            "can_write": Role.USER in principal.roles,
            "csrf": session.csrf if session is not None else None,
            "csrf_header": CSRF_HEADER,
            "signed_in_with": "session" if session is not None else "token",
            "levels": levels.levels(),
            **extra,
        }
        # '</' never appears inside the element, whatever a value holds
        return json.dumps(data).replace("</", "<\\/")


class DashboardListPage(_Page):
    @public
    async def get(self) -> None:
        principal = await self.viewer()
        if principal is not None:
            self.page("list.html", config=self.config(principal), principal=principal)


class DashboardScanPage(_Page):
    @public
    async def get(self, scan_id: str) -> None:
        principal = await self.viewer()
        if principal is None:
            return
        try:
            await self.ctx.scans.get_manifest_cached(
                scan_id, include_deleted=True, max_age_s=summary.MAX_AGE_S
            )
        except ScanNotFound:
            self.set_status(404)
            self.page("missing.html", scan_id=scan_id)
            return
        self.page(
            "scan.html",
            config=self.config(principal, scan_id=scan_id),
            principal=principal,
            scan_id=scan_id,
        )


class SignInPage(_HTML):
    """Local mode: the page that exchanges the code of a `skydriver dashboard` link. OpenID mode: the start
    of the authorization-code flow (a redirect to the provider)."""

    @public
    async def get(self) -> None:
        target = safe_next(self.get_query_argument("next", None))
        signin = self.ctx.signin
        if isinstance(signin, OpenIDSignIn):
            state = secrets.token_urlsafe(32)
            verifier, challenge = pkce_pair()
            try:
                url = await signin.authorize_url(state, challenge)
            except SignInError as e:
                self.set_status(503)
                self.page("signin.html", mode="openid", error=str(e), target=target)
                return
            assert self.ctx.sessions is not None
            await self.ctx.sessions.put_openid_signin(
                state, {"verifier": verifier, "next": target}, OPENID_SIGNIN_TTL_S
            )
            # Lax, not Strict: the provider sends the browser back from another site, and a Strict
            # cookie would not come with it. It only binds this sign-in to this browser; it opens nothing.
            self.set_cookie(
                STATE_COOKIE,
                state,
                max_age=int(OPENID_SIGNIN_TTL_S),
                path=CALLBACK_PATH,
                httponly=True,
                secure=self.ctx.sessions.secure,
                samesite="Lax",
            )
            self.redirect(url)
            return
        self.page("signin.html", mode="local", error=None, target=target)


class SignInCallbackHandler(_HTML):
    """OpenID mode: where the provider sends the browser back with an authorization code."""

    @public
    async def get(self) -> None:
        signin = self.ctx.signin
        sessions = self.ctx.sessions
        if not isinstance(signin, OpenIDSignIn) or sessions is None:
            raise tornado.web.HTTPError(404, reason="this deployment does not sign in with OpenID")
        state = self.get_query_argument("state", "")
        cookie = self.get_cookie(STATE_COOKIE) or ""
        self.clear_cookie(STATE_COOKIE, path=CALLBACK_PATH)
        if self.get_query_argument("error", None):
            self.set_status(403)
            self.page("signin.html", mode="openid", error="the provider refused", target="")
            return
        if not state or not hmac.compare_digest(state.encode(), cookie.encode()):
            LOG.info("OpenID sign-in: state does not match this browser's")
            self.set_status(403)
            self.page(
                "signin.html",
                mode="openid",
                error="this sign-in was not started in this browser, or has expired: start again",
                target="",
            )
            return
        started = await sessions.pop_openid_signin(state)
        code = self.get_query_argument("code", "")
        if started is None or not code:
            self.set_status(403)
            self.page(
                "signin.html", mode="openid", error="this sign-in expired: start again", target=""
            )
            return
        try:
            principal = await signin.exchange(code, str(started["verifier"]))
            secret, _ = await sessions.create(principal)
        except SignInError as e:
            self.set_status(403)
            self.page("signin.html", mode="openid", error=str(e), target="")
            return
        except Forbidden:
            self.set_status(403)
            self.page(
                "signin.html",
                mode="openid",
                error="your account has neither the users nor the viewers role of SkyDriver",
                target="",
            )
            return
        self.set_session_cookie(secret)
        self.bounce(safe_next(str(started.get("next", ""))))


class SessionHandler(BaseHandler):
    """POST: exchange a one-time sign-in code (local mode) for a session cookie. DELETE: sign out."""

    @public
    async def post(self) -> None:
        signin, sessions = self.ctx.signin, self.ctx.sessions
        if not isinstance(signin, LocalSignIn) or sessions is None:
            raise tornado.web.HTTPError(404, reason="this deployment signs in with OpenID")
        origin = self.request.headers.get("Origin")
        if origin is not None and origin.lower() not in (
            sessions.public_origin,
            f"{self.request.protocol}://{self.request.host}".lower(),
        ):
            raise Forbidden("sign-in from another site refused")
        body = self.json_body()
        code, target = body.get("code"), body.get("next")
        if not isinstance(code, str) or not code:
            raise InvalidRequest("'code' is a required property")
        try:
            principal, code_id, expires_at = signin.verify(code)
        except Forbidden:
            raise Forbidden(INVALID_CODE) from None
        if not await sessions.use_signin_code(code_id, expires_at):
            LOG.info("a sign-in code for %r was used again", principal.subject)
            raise Forbidden(ALREADY_USED)
        secret, session = await sessions.create(principal)
        self.set_cookie(
            sessions.cookie_name, secret, max_age=sessions.ttl_s, **sessions.cookie_options()
        )
        self.send(
            {
                "next": safe_next(target if isinstance(target, str) else None),
                "subject": session.subject,
                "roles": sorted(r.value for r in session.roles),
            }
        )

    @public
    async def delete(self) -> None:
        sessions = self.ctx.sessions
        cookie = self.session_cookie()
        if sessions is not None and cookie is not None:
            session = await sessions.get(cookie)
            if session is not None:
                own = f"{self.request.protocol}://{self.request.host}"
                sessions.check_csrf(session, "DELETE", self.request.headers, own)
                await sessions.end(cookie)
            self.clear_cookie(sessions.cookie_name, **sessions.cookie_options())
        self.set_status(204)
        self.finish()


class DashboardStaticHandler(tornado.web.StaticFileHandler):
    """The dashboard's scripts, styles and colour table, served by SkyDriver itself (works offline).
    Public: they hold no data. Versioned URLs (`?v=<hash>`) are cached for a year."""

    def initialize(self, ctx: Any = None, **kwargs: Any) -> None:  # type: ignore[override]
        super().initialize(path=str(STATIC_DIR))

    def set_extra_headers(self, path: str) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        if path.endswith(".js"):
            self.set_header("Content-Type", "text/javascript; charset=utf-8")

    @classmethod
    def version(cls, path: str) -> str:
        return cls.get_version({"static_path": str(STATIC_DIR)}, path) or "0"

    @public
    async def get(self, path: str, include_body: bool = True) -> None:
        await super().get(path, include_body)

    @public
    async def head(self, path: str) -> None:
        await super().get(path, include_body=False)
