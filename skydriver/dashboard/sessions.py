"""Dashboard sessions: a cookie instead of a bearer token, for browsers.

A session is made at sign-in (a local one-time code, or OpenID) and stored in `DashboardSessions` under the
SHA-256 of its cookie value (a database dump reveals no usable cookie). It records who signed in, their
roles at that moment (taken from the token's claims exactly as for a bearer token), a CSRF token and when it
expires. The cookie is `HttpOnly`, `SameSite=Strict`, `Path=/`, and `Secure` with the `__Host-` name prefix
whenever SkyDriver's public URL is https.

Every request made with the cookie that is not a read (GET, HEAD, OPTIONS) must carry the session's CSRF
token in `X-CSRF-Token` (the page has it from a `<meta>` tag; another site can neither read it nor make a
browser send it), and, if the browser names an `Origin`, it must be SkyDriver's own. The checks are in
`check_csrf`, called by the base handler before the body is read."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pymongo.errors import DuplicateKeyError

from skyscan_contract.errors import Forbidden

from ..auth import DenialReason, Principal, Role, authorization_failed
from ..store.db import Database

LOG = logging.getLogger(__name__)

COOKIE = "skydriver_session"
#: the name over https: browsers then insist on Secure, Path=/ and no Domain
SECURE_COOKIE = "__Host-skydriver_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
CSRF_FAILED = "CSRF check failed: this request needs the page's X-CSRF-Token (reload the page)"
#: people sign in to the dashboard; a session never holds the system role
SESSION_ROLES = frozenset({Role.USER, Role.VIEWER})


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    key: str  # sha256 of the cookie value
    subject: str
    roles: frozenset[Role]
    csrf: str
    created_at: float
    expires_at: float

    def principal(self) -> Principal:
        return Principal(subject=self.subject, roles=self.roles, claims={"session": True})

    @property
    def read_only(self) -> bool:
        return Role.USER not in self.roles


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class SessionStore:
    """Sessions in the database, with an in-process copy kept `cache_ttl_s` (a page load and its event
    stream must not wait for the database); sessions are made and ended only here, so ending one drops the
    copy at once, and the copy only matters for a session ended by another process (none: one SkyDriver)."""

    def __init__(
        self, db: Database, *, public_url: str, ttl_s: int, cache_ttl_s: float = 300.0
    ) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self.cache_ttl_s = cache_ttl_s
        self.public_origin = origin_of(public_url)
        self.secure = public_url.lower().startswith("https://")
        self.cookie_name = SECURE_COOKIE if self.secure else COOKIE
        self._cache: dict[str, tuple[float, Session | None]] = {}

    async def ensure_indexes(self) -> None:
        await self.db.sessions.create_index("expires_at", name="expires_at_index")
        await self.db.signin_codes.create_index("expires_at", name="expires_at_index")

    # -- sessions -----------------------------------------------------------------------------
    async def create(self, principal: Principal) -> tuple[str, Session]:
        """A new session for `principal` (who must hold the user or viewer role); returns the cookie
        value (shown once, never stored) and the session."""
        roles = frozenset(principal.roles & SESSION_ROLES)
        if not roles:
            raise authorization_failed(DenialReason.WRONG_ROLE)
        if principal.scan_id is not None:
            raise authorization_failed(DenialReason.SCOPED_TOKEN)
        secret = secrets.token_urlsafe(32)
        now = time.time()
        session = Session(
            key=_digest(secret),
            subject=principal.subject,
            roles=roles,
            csrf=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + self.ttl_s,
        )
        await self.db.sessions.insert_one(
            {
                "_id": session.key,
                "subject": session.subject,
                "roles": sorted(r.value for r in roles),
                "csrf": session.csrf,
                "created_at": session.created_at,
                "expires_at": session.expires_at,
            }
        )
        await self.db.sessions.delete_many({"expires_at": {"$lt": now}})  # tidy up old ones
        LOG.info("dashboard session for %r with roles %s", session.subject, sorted(roles))
        return secret, session

    async def get(self, secret: str) -> Session | None:
        """The live session of a cookie value, or None (unknown, ended or expired)."""
        if not secret or len(secret) > 200:
            return None
        key = _digest(secret)
        now = time.time()
        hit = self._cache.get(key)
        if hit is None or time.monotonic() - hit[0] > self.cache_ttl_s:
            doc = await self.db.sessions.find_one({"_id": key})
            hit = (time.monotonic(), None if doc is None else _session(doc))
            self._cache[key] = hit
            if len(self._cache) > 10_000:  # bounded: forget the oldest half
                for old in list(self._cache)[:5_000]:
                    del self._cache[old]
        session = hit[1]
        if session is None or session.expires_at <= now:
            return None
        return session

    async def end(self, secret: str) -> None:
        key = _digest(secret)
        self._cache.pop(key, None)
        await self.db.sessions.delete_one({"_id": key})

    # -- one-time things ----------------------------------------------------------------------
    async def use_signin_code(self, code_id: str, expires_at: float) -> bool:
        """Record that a sign-in code was exchanged; False if it already was."""
        try:
            await self.db.signin_codes.insert_one({"_id": code_id, "expires_at": expires_at})
        except DuplicateKeyError:
            return False
        await self.db.signin_codes.delete_many({"expires_at": {"$lt": time.time() - 60}})
        return True

    async def put_openid_signin(self, state: str, doc: dict[str, Any], ttl_s: float) -> None:
        await self.db.openid_signins.insert_one(
            {"_id": _digest(state), **doc, "expires_at": time.time() + ttl_s}
        )

    async def pop_openid_signin(self, state: str) -> dict[str, Any] | None:
        """The sign-in started with `state`, once (a second callback with it finds nothing)."""
        doc = await self.db.openid_signins.find_one_and_delete({"_id": _digest(state)})
        await self.db.openid_signins.delete_many({"expires_at": {"$lt": time.time()}})
        if doc is None or float(doc.get("expires_at", 0)) <= time.time():
            return None
        return doc

    # -- checks -------------------------------------------------------------------------------
    def check_csrf(self, session: Session, method: str, headers: Any, own_origin: str) -> None:
        """A state-changing request made with the cookie must carry the session's CSRF token and, if the
        browser says where it comes from, come from SkyDriver's own origin."""
        if method in SAFE_METHODS:
            return
        origin = headers.get("Origin")
        if origin is not None and origin.lower() not in (self.public_origin, own_origin.lower()):
            LOG.info("CSRF check failed: %s from origin %r", method, origin[:100])
            raise Forbidden(CSRF_FAILED)
        sent = headers.get(CSRF_HEADER) or ""
        if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
            LOG.info("CSRF check failed: %s without the session's token", method)
            raise Forbidden(CSRF_FAILED)

    def cookie_options(self) -> dict[str, Any]:
        return {
            "httponly": True,
            "secure": self.secure,
            "samesite": "Strict",
            "path": "/",
        }


def _session(doc: dict[str, Any]) -> Session:
    return Session(
        key=str(doc["_id"]),
        subject=str(doc.get("subject", "")),
        roles=frozenset(Role(r) for r in doc.get("roles", []) if r in Role._value2member_map_),
        csrf=str(doc["csrf"]),
        created_at=float(doc.get("created_at", 0)),
        expires_at=float(doc["expires_at"]),
    )
