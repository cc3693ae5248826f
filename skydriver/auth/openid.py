"""Production mode: tokens of an OpenID provider (Keycloak).

A token is accepted when it is signed by one of the provider's keys with an allowed algorithm (RS256/384/512,
ES256/384/512: never HMAC, `none` or EdDSA), its `iss` is exactly the configured provider URL, its `aud`
holds our audience, and `exp`/`iat` are present and current (30 s leeway). Roles come from the claims as in
local mode.

The keys (`ProviderKeys`) are fetched on the event loop with httpx: never in a thread, so a slow provider
cannot starve the default executor, and never at import or construction. Discovery
(`<url>/.well-known/openid-configuration`, whose `issuer` must be the configured URL) gives the JWKS address;
both answers together must arrive within `fetch_timeout_s`. The keys are then:

- used for `lifespan_s`; after that the old keys keep answering while a new copy is fetched in the
  background, and stay in use for as long as the provider cannot be reached;
- fetched at most once per `refresh_min_interval_s`, however many tokens name an unknown key id (`kid`).
  Concurrent requests share one fetch; meanwhile and afterwards such tokens are refused at once;
- a `kid` that a successful fetch did not contain is refused without another fetch for `unknown_kid_ttl_s`.

So a token whose key is cached never waits for the provider, and any other token waits at most one fetch
timeout (audit 2026-12, finding 9). Tokens already verified are answered from `VerifiedTokens`."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ec import (
    EllipticCurvePrivateKey,
    EllipticCurvePublicKey,
)
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from .principal import (
    DEFAULT_AUDIENCE,
    DenialReason,
    Principal,
    VerifiedTokens,
    _authentication_failed,
    _cause,
    _jwt_failed,
    bearer_token,
    principal_from_claims,
)

LOG = logging.getLogger(__name__)

RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512"})
EC_ALGORITHMS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
OPENID_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")
"""The only `alg` values accepted in OpenID mode."""
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud"]
MIN_RSA_KEY_BITS = 2048
MAX_PROVIDER_RESPONSE_BYTES = 1_000_000
MAX_KID_CHARS = 256
MAX_REMEMBERED_UNKNOWN_KIDS = 1024

VerifyingKey = RSAPublicKey | EllipticCurvePublicKey


@dataclass(frozen=True)
class SigningKey:
    """One of the provider's public keys, and the algorithms it may verify (its JWK's `alg`, if given)."""

    kid: str
    key: VerifyingKey
    algorithms: frozenset[str]


class ProviderError(Exception):
    """The provider answered, but not with what OpenID discovery or a JWKS must contain."""


class KeyUnavailable(Exception):
    """No key for a token's `kid`; the message says why (logged as the cause of the refusal)."""


def signing_keys(jwks: object) -> dict[str, SigningKey]:
    """kid -> key for the keys of a JWKS document that may verify tokens: RSA (at least 2048 bits) or EC
    (P-256/384/521), `use` "sig" or absent, with a `kid`, and an `alg` (if given) in the allow-list. Other keys
    (Keycloak's RSA-OAEP encryption key, HMAC secrets…) are skipped."""
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(keys, list):
        raise ProviderError("the JWKS document has no 'keys' list")
    found: dict[str, SigningKey] = {}
    for jwk in keys:
        if not isinstance(jwk, Mapping):
            continue
        kid, kty, alg = jwk.get("kid"), jwk.get("kty"), jwk.get("alg")
        if not isinstance(kid, str) or not kid or jwk.get("use", "sig") != "sig":
            continue
        if kty == "RSA":
            allowed = set(RSA_ALGORITHMS)
        elif kty == "EC" and (curve_alg := EC_ALGORITHMS.get(str(jwk.get("crv")))):
            allowed = {curve_alg}
        else:
            continue
        if alg is not None:
            allowed &= {alg}
        if not allowed:
            continue
        try:
            parsed = (RSAAlgorithm if kty == "RSA" else ECAlgorithm).from_jwk(dict(jwk))
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as e:
            LOG.warning("OpenID provider key %r is unusable, skipped: %s", kid[:64], _cause(e))
            continue
        if isinstance(parsed, RSAPrivateKey | EllipticCurvePrivateKey):
            parsed = parsed.public_key()
        if isinstance(parsed, RSAPublicKey) and parsed.key_size < MIN_RSA_KEY_BITS:
            LOG.warning("OpenID provider key %r has %d bits, skipped", kid[:64], parsed.key_size)
            continue
        if isinstance(parsed, RSAPublicKey | EllipticCurvePublicKey):
            found[kid] = SigningKey(kid, parsed, frozenset(allowed))
    return found


async def _get_json(client: httpx.AsyncClient, url: str) -> Any:
    async with client.stream("GET", url, headers={"Accept": "application/json"}) as response:
        if response.status_code != 200:
            raise ProviderError(f"GET {url} answered HTTP {response.status_code}")
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_PROVIDER_RESPONSE_BYTES:
                raise ProviderError(
                    f"GET {url}: answer larger than {MAX_PROVIDER_RESPONSE_BYTES} bytes"
                )
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as e:
        raise ProviderError(f"GET {url}: answer is not JSON ({type(e).__name__})") from e


class ProviderKeys:
    """The signing keys of the provider whose issuer is `issuer`: fetched, cached and refreshed as the module
    docstring says. `jwks` (a JWKS document) fixes the keys instead: nothing is ever fetched."""

    def __init__(
        self,
        issuer: str,
        *,
        fetch_timeout_s: float,
        lifespan_s: float,
        refresh_min_interval_s: float,
        unknown_kid_ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
        jwks: Mapping[str, Any] | None = None,
    ) -> None:
        self.issuer = issuer
        self.discovery_url = f"{issuer.rstrip('/')}/.well-known/openid-configuration"
        self.fetch_timeout_s = fetch_timeout_s
        self.lifespan_s = lifespan_s
        self.refresh_min_interval_s = refresh_min_interval_s
        self.unknown_kid_ttl_s = unknown_kid_ttl_s
        self._clock = clock
        self._static = jwks is not None
        self._keys: dict[str, SigningKey] = signing_keys(jwks) if jwks is not None else {}
        self._jwks_uri: str | None = None
        self._fetched_at: float | None = None
        self._last_attempt: float | None = None
        self._fetch: asyncio.Task[bool] | None = None
        self._unknown: OrderedDict[str, float] = (
            OrderedDict()
        )  # kid -> monotonic time it is forgotten

    async def get(self, kid: str) -> SigningKey:
        """The key `kid` names; `KeyUnavailable` if there is none (now, or within one fetch)."""
        now = self._clock()
        key = self._keys.get(kid)
        if key is not None:
            stale = not self._static and self._stale(now)
            if stale and self._fetch is None and self._may_fetch(now):
                # fetch again in the background: this request goes on with the cached key
                self._start_fetch(now)
            return key
        if self._static:
            raise KeyUnavailable(f"unknown key id {kid[:64]!r} (keys are fixed)")
        forget_at = self._unknown.get(kid)
        if forget_at is not None:
            if forget_at > now:
                raise KeyUnavailable(f"unknown key id {kid[:64]!r} (absent from the last fetch)")
            del self._unknown[kid]
        fetch = self._fetch
        if fetch is None:
            if not self._may_fetch(now):
                raise KeyUnavailable(
                    f"unknown key id {kid[:64]!r}; the provider's keys were fetched (or tried) less "
                    f"than {self.refresh_min_interval_s:g} s ago"
                )
            fetch = self._start_fetch(now)
        # shielded: a caller that gives up does not cancel the fetch others wait for
        fetched = await asyncio.shield(fetch)
        key = self._keys.get(kid)
        if key is not None:
            return key
        if not fetched:
            raise KeyUnavailable(
                f"no key for id {kid[:64]!r}: the provider's keys could not be fetched"
            )
        self._remember_unknown(kid)
        raise KeyUnavailable(f"unknown key id {kid[:64]!r} (absent from the provider's keys)")

    async def refresh(self) -> bool:
        """Fetch the keys now, or join the fetch under way; True if that fetch succeeded."""
        if self._static:
            return True
        fetch = self._fetch or self._start_fetch(self._clock())
        return await asyncio.shield(fetch)

    async def aclose(self) -> None:
        """Cancel a fetch under way (at shutdown)."""
        if (fetch := self._fetch) is not None:
            fetch.cancel()
            await asyncio.gather(fetch, return_exceptions=True)

    def _stale(self, now: float) -> bool:
        return self._fetched_at is None or now - self._fetched_at >= self.lifespan_s

    def _may_fetch(self, now: float) -> bool:
        return self._last_attempt is None or now - self._last_attempt >= self.refresh_min_interval_s

    def _start_fetch(self, now: float) -> asyncio.Task[bool]:
        self._last_attempt = now
        self._fetch = asyncio.get_running_loop().create_task(
            self._fetch_keys(), name="openid-provider-keys"
        )
        return self._fetch

    def _remember_unknown(self, kid: str) -> None:
        self._unknown[kid] = self._clock() + self.unknown_kid_ttl_s
        self._unknown.move_to_end(kid)
        while len(self._unknown) > MAX_REMEMBERED_UNKNOWN_KIDS:
            self._unknown.popitem(last=False)

    async def _fetch_keys(self) -> bool:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.fetch_timeout_s):
                async with httpx.AsyncClient(timeout=self.fetch_timeout_s) as client:
                    if self._jwks_uri is None:
                        self._jwks_uri = self._jwks_uri_of(
                            await _get_json(client, self.discovery_url)
                        )
                    keys = signing_keys(await _get_json(client, self._jwks_uri))
        except TimeoutError:
            self._log_failure(f"no answer within {self.fetch_timeout_s:g} s")
            return False
        except (httpx.HTTPError, ProviderError) as e:
            self._jwks_uri = None  # discover again next time: the provider may have moved its keys
            self._log_failure(_cause(e))
            return False
        except Exception:  # a task others await (or nobody, in the background) must not raise
            LOG.exception("OpenID provider %s: unexpected error while fetching keys", self.issuer)
            self._jwks_uri = None
            return False
        finally:
            self._fetch = None
        if not keys:
            self._log_failure("its JWKS holds no usable signing key")
            return False
        self._keys = keys
        self._fetched_at = self._clock()
        LOG.info(
            "OpenID provider %s: %d signing key(s) %s, fetched in %.2f s",
            self.issuer,
            len(keys),
            sorted(keys),
            time.monotonic() - started,
        )
        return True

    def _jwks_uri_of(self, discovery: object) -> str:
        if not isinstance(discovery, Mapping):
            raise ProviderError("the discovery document is not a JSON object")
        issuer, jwks_uri = discovery.get("issuer"), discovery.get("jwks_uri")
        if issuer != self.issuer:
            raise ProviderError(
                f"the discovery document names issuer {str(issuer)[:200]!r}, not {self.issuer!r}; if that "
                "is the provider, set SKYDRIVER_AUTH_OPENID_URL to it exactly"
            )
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
            raise ProviderError("the discovery document has no http(s) 'jwks_uri'")
        if self.issuer.startswith("https://") and not jwks_uri.startswith("https://"):
            raise ProviderError(f"the discovery document's jwks_uri {jwks_uri!r} is not https")
        return jwks_uri

    def _log_failure(self, cause: str) -> None:
        kept = f"the {len(self._keys)} cached key(s) stay in use" if self._keys else "no keys yet"
        LOG.warning(
            "OpenID provider %s: fetching keys failed (%s); %s; next attempt in %g s at the earliest",
            self.issuer,
            cause,
            kept,
            self.refresh_min_interval_s,
        )


class OpenIDAuthenticator:
    """Verifies tokens of the OpenID provider `url` (the issuer, e.g. a Keycloak realm) for `audience`.

    No network I/O happens here: keys are fetched on the first `authenticate` (or `prefetch_keys`), on the event
    loop, as the module docstring says. `jwks` (a JWKS document) fixes the keys and disables fetching. `clock`
    (monotonic seconds) times the key cache; tests move it forward."""

    def __init__(
        self,
        url: str,
        *,
        audience: str = DEFAULT_AUDIENCE,
        leeway_s: float = 30.0,
        fetch_timeout_s: float = 5.0,
        keys_lifespan_s: float = 600.0,
        refresh_min_interval_s: float = 10.0,
        unknown_kid_ttl_s: float = 60.0,
        jwks: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not url:
            raise ValueError("OpenID provider URL is empty (set SKYDRIVER_AUTH_OPENID_URL)")
        self.url = self.issuer = url
        self.audience = audience
        self.leeway_s = leeway_s
        self.keys = ProviderKeys(
            url,
            fetch_timeout_s=fetch_timeout_s,
            lifespan_s=keys_lifespan_s,
            refresh_min_interval_s=refresh_min_interval_s,
            unknown_kid_ttl_s=unknown_kid_ttl_s,
            clock=clock,
            jwks=jwks,
        )
        self._verified = VerifiedTokens()

    async def prefetch_keys(self) -> bool:
        """Fetch discovery and keys now (optional; otherwise the first request does). True on success."""
        return await self.keys.refresh()

    async def aclose(self) -> None:
        await self.keys.aclose()

    async def authenticate(self, authorization_header: str | None) -> Principal:
        token = bearer_token(authorization_header)
        if (known := self._verified.get(token)) is not None:
            return known
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise _authentication_failed(_cause(e), token) from e
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in OPENID_ALGORITHMS:
            raise _authentication_failed(
                f"algorithm {str(alg)[:20]!r} is not allowed (only {', '.join(OPENID_ALGORITHMS)})"
            )
        if not isinstance(kid, str) or not kid:
            raise _authentication_failed("token header has no key id ('kid')")
        if len(kid) > MAX_KID_CHARS:
            raise _authentication_failed(f"key id longer than {MAX_KID_CHARS} characters")
        try:
            key = await self.keys.get(kid)
        except KeyUnavailable as e:
            raise _authentication_failed(str(e), token, DenialReason.UNKNOWN_KEY) from None
        if alg not in key.algorithms:
            raise _authentication_failed(
                f"key {kid[:64]!r} verifies {', '.join(sorted(key.algorithms))}, not {alg}"
            )
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError as e:
            raise _jwt_failed(e, token) from e
        principal = principal_from_claims(claims)
        self._verified.put(token, principal)
        return principal
