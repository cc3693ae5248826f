"""A tiny OpenID provider for tests: a real Tornado HTTP server on 127.0.0.1 (a free port) serving
`/realms/<realm>/.well-known/openid-configuration` and a JWKS of keys it generates, and signing tokens with them.

It can be scripted: slow (`jwks_delay_s`, `discovery_delay_s`: answers are held that long, or until `stop()`),
failing (`status`), and rotating its keys (`rotate`). It counts the requests it gets, and a test can wait on those
counts (`wait_until`) instead of sleeping. It runs on the test's event loop."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import tornado.httpserver
import tornado.testing
import tornado.web
from cryptography.hazmat.primitives.asymmetric import ec, rsa

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
_RSA_KEYS: list[
    rsa.RSAPrivateKey
] = []  # generated once per test session: 2048-bit generation is slow


def _rsa_key(i: int) -> rsa.RSAPrivateKey:
    """The i-th key of the session's pool (distinct keys within one provider)."""
    while len(_RSA_KEYS) <= i:
        _RSA_KEYS.append(rsa.generate_private_key(65537, 2048))
    return _RSA_KEYS[i]


@dataclass
class Counts:
    discovery: int = 0
    jwks: int = 0
    jwks_in_flight: int = 0


class FakeOpenIDProvider:
    def __init__(self, realm: str = "IceCube", audience: str = "skydriver") -> None:
        self.realm = realm
        self.audience = audience
        self.keys: dict[str, tuple[SigningKey, str | None]] = {}  # published: kid -> (key, JWK alg)
        self._encryption_key = _rsa_key(0)
        self._generated = 1
        self.current_kid = self.rotate()
        self.jwks_delay_s = 0.0
        self.discovery_delay_s = 0.0
        self.status = 200
        self.issuer_in_discovery: str | None = None  # None: the real issuer
        self.jwks_body: bytes | None = None  # None: the real JWKS
        self.counts = Counts()
        self._changed = asyncio.Condition()
        self._stopping = asyncio.Event()
        self._server: tornado.httpserver.HTTPServer | None = None
        self.url = ""

    # -- scripting --------------------------------------------------------------------------

    def rotate(self, *, drop_old: bool = False, alg: str | None = "RS256") -> str:
        """Publish a new signing key (RS256 or ES256; None: an RSA key whose JWK names no `alg`) and sign with
        it from now on; returns its kid."""
        key: SigningKey
        if alg == "ES256":
            key = ec.generate_private_key(ec.SECP256R1())
        else:
            key = _rsa_key(self._generated)
            self._generated += 1
        kid = f"kid-{uuid.uuid4().hex[:12]}"
        if drop_old:
            self.keys.clear()
        self.keys[kid] = (key, alg)
        self.current_kid = kid
        return kid

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, (key, alg) in self.keys.items():
            if isinstance(key, rsa.RSAPrivateKey):
                jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
            else:
                jwk = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
            keys.append({**jwk, "kid": kid, "use": "sig", **({"alg": alg} if alg else {})})
        # Keycloak also publishes an encryption key; a verifier must not use it for signatures (with or
        # without an `alg`)
        enc = jwt.algorithms.RSAAlgorithm.to_jwk(self._encryption_key.public_key(), as_dict=True)
        keys.append({**enc, "kid": "enc-1", "use": "enc", "alg": "RSA-OAEP"})
        keys.append({**enc, "kid": "enc-2", "use": "enc"})
        return {"keys": keys}

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.url,
            "aud": [self.audience, "account"],
            "sub": "5f0c-uuid",
            "azp": "skydriver-external",
            "preferred_username": "alice",
            "iat": now,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,  # every token differs, so none is served from a verified-token cache
            "resource_access": {
                "skydriver-external": {"roles": ["users"]},
                "account": {"roles": ["view-profile"]},
            },
        }
        claims.update(overrides)
        return claims

    def token(
        self, *, kid: str | None = None, key: SigningKey | None = None, **overrides: Any
    ) -> str:
        """A token signed with the current key (or `kid`'s, or `key` under `kid`); claims as Keycloak's."""
        kid = kid or self.current_kid
        if key is None:
            key, _ = self.keys[kid]
        alg = "ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS256"
        return jwt.encode(self.claims(**overrides), key, algorithm=alg, headers={"kid": kid})

    def bearer(self, **kwargs: Any) -> str:
        return f"Bearer {self.token(**kwargs)}"

    async def wait_until(
        self, condition: Callable[[Counts], bool], timeout_s: float = 10.0
    ) -> None:
        """Until `condition(self.counts)` holds (woken by each request; no polling)."""
        async with asyncio.timeout(timeout_s):
            async with self._changed:
                await self._changed.wait_for(lambda: condition(self.counts))

    # -- serving ----------------------------------------------------------------------------

    async def _count(self, change: Callable[[Counts], None]) -> None:
        async with self._changed:
            change(self.counts)
            self._changed.notify_all()

    async def _hold(self, seconds: float) -> None:
        """Answer late: after `seconds`, or at once when the provider stops."""
        if seconds > 0:
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
            except TimeoutError:
                pass

    async def start(self) -> str:
        provider = self

        class Discovery(tornado.web.RequestHandler):
            async def get(self) -> None:
                await provider._count(lambda c: setattr(c, "discovery", c.discovery + 1))
                await provider._hold(provider.discovery_delay_s)
                if provider.status != 200:
                    self.send_error(provider.status)
                    return
                base = f"{provider.url}/protocol/openid-connect"
                self.finish(
                    {
                        "issuer": provider.issuer_in_discovery or provider.url,
                        "jwks_uri": f"{base}/certs",
                        "token_endpoint": f"{base}/token",
                        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                    }
                )

        class Certs(tornado.web.RequestHandler):
            async def get(self) -> None:
                await provider._count(lambda c: setattr(c, "jwks", c.jwks + 1))
                await provider._count(lambda c: setattr(c, "jwks_in_flight", c.jwks_in_flight + 1))
                try:
                    await provider._hold(provider.jwks_delay_s)
                    if provider.status != 200:
                        self.send_error(provider.status)
                        return
                    self.set_header("Content-Type", "application/json")
                    body = provider.jwks_body
                    self.finish(body if body is not None else json.dumps(provider.jwks()))
                finally:
                    await provider._count(
                        lambda c: setattr(c, "jwks_in_flight", c.jwks_in_flight - 1)
                    )

        realm = f"/realms/{self.realm}"
        app = tornado.web.Application(
            [
                (f"{realm}/.well-known/openid-configuration", Discovery),
                (f"{realm}/protocol/openid-connect/certs", Certs),
            ]
        )
        sock, port = tornado.testing.bind_unused_port()
        self._server = tornado.httpserver.HTTPServer(app)
        self._server.add_sockets([sock])
        self.url = f"http://127.0.0.1:{port}{realm}"
        return self.url

    async def stop(self) -> None:
        """Stop listening (connections are then refused) and answer whatever is being held."""
        self._stopping.set()
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()
            self._server = None
