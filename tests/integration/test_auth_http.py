"""`@requires` over real HTTP: a tiny Tornado app of its own (not SkyDriver's), served on a free port and called
with httpx. It checks the 403 status, the reason phrase, the `{"code", "error"}` body, and that the token never
comes back. Needs no database or broker."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
import tornado.httpserver
import tornado.testing
import tornado.web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from skydriver.auth import (
    AUTHENTICATION_FAILED,
    AUTHORIZATION_FAILED,
    SCAN_ID_CLAIM,
    Authenticator,
    LocalKeyAuthenticator,
    Principal,
    Role,
    requires,
)
from skyscan_contract.errors import SkyDriverError


class Handler(tornado.web.RequestHandler):
    """Does what SkyDriver's BaseHandler does for auth: one principal per request, errors as JSON with the message
    as the reason phrase."""

    def initialize(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator
        self._principal: Principal | None = None

    async def current_principal(self) -> Principal:
        if self._principal is None:
            header = self.request.headers.get("Authorization")
            self._principal = await self.authenticator.authenticate(header)
        return self._principal

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish(json.dumps({"code": status_code, "error": self._reason}))

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, SkyDriverError) and not self._finished:
            self.send_error(e.status, reason=e.message)
            return
        super()._handle_request_exception(e)


class RootHandler(Handler):
    @requires(Role.USER)
    async def get(self) -> None:
        self.finish({})


class ManifestHandler(Handler):
    @requires(Role.USER, Role.SYSTEM)
    async def get(self, scan_id: str) -> None:
        principal = await self.current_principal()
        self.finish({"scan_id": scan_id, "subject": principal.subject})

    @requires(Role.SYSTEM)
    async def patch(self, scan_id: str) -> None:
        self.finish({"scan_id": scan_id, "patched": True})


@pytest.fixture
def auth() -> LocalKeyAuthenticator:
    return LocalKeyAuthenticator(Ed25519PrivateKey.generate())


@pytest.fixture
async def client(auth: LocalKeyAuthenticator) -> AsyncIterator[httpx.AsyncClient]:
    args = {"authenticator": auth}
    app = tornado.web.Application(
        [
            (r"/", RootHandler, args),
            (r"/scan/(?P<scan_id>\w+)/manifest", ManifestHandler, args),
        ]
    )
    sock, port = tornado.testing.bind_unused_port()
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets([sock])
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            yield c
    finally:
        server.stop()
        await server.close_all_connections()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_forbidden(response: httpx.Response, message: str, token: str | None = None) -> None:
    assert response.status_code == 403
    assert response.reason_phrase == message
    assert response.json() == {"code": 403, "error": message}
    if token:
        assert token not in response.text
        assert all(token not in v for v in response.headers.values())


async def test_missing_and_invalid_tokens(
    client: httpx.AsyncClient, auth: LocalKeyAuthenticator
) -> None:
    assert_forbidden(await client.get("/"), f"{AUTHENTICATION_FAILED}: no token")
    assert_forbidden(
        await client.get("/", headers={"Authorization": "Basic x"}),
        f"{AUTHENTICATION_FAILED}: malformed token",
    )
    assert_forbidden(
        await client.get("/", headers=bearer("not.a.jwt")),
        f"{AUTHENTICATION_FAILED}: malformed token",
    )
    stranger = LocalKeyAuthenticator(Ed25519PrivateKey.generate())
    forged = stranger.issue_token(Role.USER, subject="mallory", ttl_s=60)
    assert_forbidden(
        await client.get("/", headers=bearer(forged)),
        f"{AUTHENTICATION_FAILED}: bad signature",
        forged,
    )
    assert_forbidden(
        await client.patch("/scan/abc/manifest", headers=bearer(forged), json={}),
        f"{AUTHENTICATION_FAILED}: bad signature",
        forged,
    )
    claims = jwt.decode(
        auth.issue_token(Role.USER, subject="late", ttl_s=60), options={"verify_signature": False}
    )
    claims["exp"] = claims["iat"] - 3600
    expired = jwt.encode(claims, auth._private_key, algorithm="EdDSA", headers={"kid": auth.key_id})
    assert_forbidden(
        await client.get("/", headers=bearer(expired)),
        f"{AUTHENTICATION_FAILED}: expired token",
        expired,
    )


async def test_roles_and_scan_scope(client: httpx.AsyncClient, auth: LocalKeyAuthenticator) -> None:
    user = auth.issue_token(Role.USER, subject="alice", ttl_s=60)
    scanner = auth.issue_token(Role.SYSTEM, subject="scanner", ttl_s=60, scan_id="abc")

    response = await client.get("/", headers=bearer(user))
    assert response.status_code == 200
    response = await client.get("/scan/abc/manifest", headers=bearer(user))
    assert response.json() == {"scan_id": "abc", "subject": "alice"}
    assert_forbidden(
        await client.patch("/scan/abc/manifest", headers=bearer(user), json={}),
        f"{AUTHORIZATION_FAILED}: wrong role",
        user,
    )

    response = await client.patch("/scan/abc/manifest", headers=bearer(scanner), json={})
    assert response.json() == {"scan_id": "abc", "patched": True}
    assert_forbidden(
        await client.patch("/scan/other/manifest", headers=bearer(scanner), json={}),
        f"{AUTHORIZATION_FAILED}: wrong scan",
        scanner,
    )
    assert_forbidden(
        await client.get("/", headers=bearer(scanner)),
        f"{AUTHORIZATION_FAILED}: wrong role",
        scanner,
    )


async def test_audit_15_null_scope_is_refused_over_http(
    client: httpx.AsyncClient, auth: LocalKeyAuthenticator
) -> None:
    """A system token whose scan scope is null gets 403 `authentication failed` on another scan's route (it was
    read as unscoped, so the request passed)."""
    scoped = auth.issue_token(Role.SYSTEM, subject="scanner", ttl_s=60, scan_id="abc")
    claims = jwt.decode(scoped, options={"verify_signature": False})
    claims[SCAN_ID_CLAIM] = None
    null_scope = jwt.encode(claims, auth._private_key, algorithm="EdDSA")
    for path in ("/scan/other/manifest", "/scan/abc/manifest"):
        assert_forbidden(
            await client.patch(path, headers=bearer(null_scope), json={}),
            f"{AUTHENTICATION_FAILED}: malformed token",
            null_scope,
        )
