"""OpenID mode against a real HTTP provider (`tests/openid_provider.py`, on 127.0.0.1): the issuer check, the key
cache, the rate limit on unknown key ids, and what a slow, failing or unreachable provider does to requests
(audit 2026-12, finding 9), and the scan-scope claim (finding 15). Needs no database or broker.

The authenticator is built from `AuthSettings`, as SkyDriver builds it. Tests that move time forward inject a
clock instead of waiting."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from skydriver.auth import (
    AUTHENTICATION_FAILED,
    SCAN_ID_CLAIM,
    Authenticator,
    AuthSettings,
    DenialReason,
    OpenIDAuthenticator,
    Principal,
    Role,
    build_authenticator,
)
from skyscan_contract.errors import Forbidden
from tests.openid_provider import FakeOpenIDProvider

FETCH_TIMEOUT_S = 1.0


@pytest.fixture
async def provider() -> AsyncIterator[FakeOpenIDProvider]:
    p = FakeOpenIDProvider()
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


def openid(provider: FakeOpenIDProvider, **settings: Any) -> Authenticator:
    values: dict[str, Any] = {
        "mode": "openid",
        "openid_url": provider.url,
        "openid_fetch_timeout_s": FETCH_TIMEOUT_S,
        "openid_refresh_min_interval_s": 60.0,  # longer than any test: the rate limit is on throughout
    }
    values.update(settings)
    return build_authenticator(AuthSettings(**values), Path("/nonexistent"))


class Clock:
    """Monotonic time the test moves forward."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def openid_with_clock(provider: FakeOpenIDProvider, clock: Clock, **kwargs: Any) -> Authenticator:
    values: dict[str, Any] = {"fetch_timeout_s": FETCH_TIMEOUT_S, "clock": clock}
    values.update(kwargs)
    return OpenIDAuthenticator(provider.url, **values)


UNKNOWN_KEY = f"{AUTHENTICATION_FAILED}: {DenialReason.UNKNOWN_KEY}"


async def authenticate(auth: Authenticator, header: str, timeout_s: float = 15.0) -> Principal:
    """Every await in a test has a deadline: the code before the fix could wait for minutes."""
    return await asyncio.wait_for(auth.authenticate(header), timeout_s)


async def refused(auth: Authenticator, header: str, caplog: pytest.LogCaptureFixture) -> str:
    """Asserts a 403 `authentication failed` that names no token; returns the logged cause."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="skydriver.auth"):
        with pytest.raises(Forbidden) as info:
            await authenticate(auth, header)
    assert info.value.message.startswith(f"{AUTHENTICATION_FAILED}: ")
    assert info.value.status == 403
    token = header.split()[-1]
    assert all(token not in r.getMessage() for r in caplog.records)
    causes = [r.getMessage() for r in caplog.records if "authentication failed:" in r.getMessage()]
    assert causes, "the cause of a refusal is logged"
    return causes[-1]


# -- the ordinary path -------------------------------------------------------------------------


async def test_openid_tokens_map_to_roles_and_keys_are_fetched_once(
    provider: FakeOpenIDProvider,
) -> None:
    auth = openid(provider)
    user = await authenticate(auth, provider.bearer())
    assert (user.roles, user.subject, user.scan_id) == (frozenset({Role.USER}), "5f0c-uuid", None)
    system = await authenticate(
        auth,
        provider.bearer(
            resource_access={"skydriver-internal": {"roles": ["system"]}}, **{SCAN_ID_CLAIM: "abc"}
        ),
    )
    assert (system.roles, system.scan_id) == (frozenset({Role.SYSTEM}), "abc")
    for _ in range(5):
        await authenticate(auth, provider.bearer())
    assert (provider.counts.discovery, provider.counts.jwks) == (1, 1)


async def test_openid_concurrent_first_requests_share_one_fetch(
    provider: FakeOpenIDProvider,
) -> None:
    """At start-up (no keys yet) concurrent requests all wait for one fetch and all succeed: none is refused
    by the rate limit that the first one's fetch starts."""
    auth = openid(provider)
    principals = await asyncio.gather(*(authenticate(auth, provider.bearer()) for _ in range(10)))
    assert all(p.roles == {Role.USER} for p in principals)
    assert (provider.counts.discovery, provider.counts.jwks) == (1, 1)


async def test_openid_claims_checks(
    provider: FakeOpenIDProvider, caplog: pytest.LogCaptureFixture
) -> None:
    """Audience, required claims and the 30 s leeway, as in local mode."""
    auth = openid(provider)
    now = int(time.time())
    await authenticate(auth, provider.bearer(exp=now - 10, iat=now - 300))  # within the leeway
    cases: list[dict[str, Any]] = [
        {"aud": "someone-else"},
        {"aud": None},
        {"exp": now - 45, "iat": now - 300},  # beyond the 30 s leeway
        {"exp": None},
        {"iat": None},
        {"nbf": now + 3600},
    ]
    for overrides in cases:
        claims = {k: v for k, v in provider.claims(**overrides).items() if v is not None}
        key, _ = provider.keys[provider.current_kid]
        token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": provider.current_kid})
        await refused(auth, f"Bearer {token}", caplog)


async def test_openid_algorithm_allow_list_holds(
    provider: FakeOpenIDProvider, caplog: pytest.LogCaptureFixture
) -> None:
    auth = openid(provider)
    rsa_kid = provider.current_kid
    rsa_key, _ = provider.keys[rsa_kid]
    es_kid = provider.rotate(alg="ES256")  # the ES256 family is allowed
    bare_kid = provider.rotate(alg=None)  # an RSA key whose JWK names no alg: the RS family
    bare_key, _ = provider.keys[bare_kid]
    assert (await authenticate(auth, provider.bearer(kid=es_kid))).roles == {Role.USER}
    assert (await authenticate(auth, provider.bearer(kid=rsa_kid))).roles == {Role.USER}
    rs512 = jwt.encode(provider.claims(), bare_key, algorithm="RS512", headers={"kid": bare_kid})
    assert (await authenticate(auth, f"Bearer {rs512}")).roles == {Role.USER}

    claims = provider.claims()
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forged = {
        "alg none": jwt.encode(claims, "", algorithm="none", headers={"kid": rsa_kid}),
        "HS256 keyed with the public key": hs256(claims, public_pem, kid=rsa_kid),
        "PS256 with the RS256 key": jwt.encode(
            claims, rsa_key, algorithm="PS256", headers={"kid": rsa_kid}
        ),
        "RS512 with a key published for RS256": jwt.encode(
            claims, rsa_key, algorithm="RS512", headers={"kid": rsa_kid}
        ),
        "EdDSA under the provider's kid": jwt.encode(
            claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": rsa_kid}
        ),
        "ES256 under the RSA key's kid": jwt.encode(
            claims,
            ec.generate_private_key(ec.SECP256R1()),
            algorithm="ES256",
            headers={"kid": rsa_kid},
        ),
        "the provider's encryption key": jwt.encode(
            claims, provider._encryption_key, algorithm="RS256", headers={"kid": "enc-1"}
        ),
        "the provider's encryption key without alg": jwt.encode(
            claims, provider._encryption_key, algorithm="RS256", headers={"kid": "enc-2"}
        ),
        "PS256 with a key whose JWK names no alg": jwt.encode(
            claims, bare_key, algorithm="PS256", headers={"kid": bare_kid}
        ),
        "no kid": jwt.encode(claims, rsa_key, algorithm="RS256"),
    }
    for name, token in forged.items():
        try:
            await refused(auth, f"Bearer {token}", caplog)
        except AssertionError as e:
            raise AssertionError(f"case {name!r}: {e}") from e


def hs256(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    """Built by hand: PyJWT refuses to HMAC with a PEM key (the algorithm-confusion attack)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode()
    signing_input = f"{b64(header)}.{b64(json.dumps(claims).encode())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


# -- audit finding 9: issuer ---------------------------------------------------------------------


async def test_audit_9_foreign_issuer_is_refused(
    provider: FakeOpenIDProvider, caplog: pytest.LogCaptureFixture
) -> None:
    auth = openid(provider)
    assert (await authenticate(auth, provider.bearer())).roles == {Role.USER}
    for iss in ["https://evil.example/realms/IceCube", f"{provider.url}/", provider.url.upper()]:
        cause = await refused(auth, provider.bearer(iss=iss), caplog)
        assert "issuer" in cause.lower()
    no_iss = {k: v for k, v in provider.claims().items() if k != "iss"}
    key, _ = provider.keys[provider.current_kid]
    token = jwt.encode(no_iss, key, algorithm="RS256", headers={"kid": provider.current_kid})
    await refused(auth, f"Bearer {token}", caplog)

    # the configured URL is the issuer exactly: with a stray slash, discovery (whose issuer has none) is
    # refused, and the warning says what to set
    slash = openid(provider, openid_url=f"{provider.url}/")
    with caplog.at_level(logging.WARNING, logger="skydriver.auth"):
        await refused(slash, provider.bearer(iss=f"{provider.url}/"), caplog)
    assert any(
        "SKYDRIVER_AUTH_OPENID_URL" in r.getMessage() and r.levelno == logging.WARNING
        for r in caplog.records
    )


async def test_audit_9_discovery_naming_another_issuer_is_refused(
    provider: FakeOpenIDProvider, caplog: pytest.LogCaptureFixture
) -> None:
    """OpenID discovery: the document's `issuer` must be the configured URL, or its keys are not used."""
    provider.issuer_in_discovery = "https://evil.example/realms/IceCube"
    auth = openid(provider)
    await refused(auth, provider.bearer(), caplog)
    assert provider.counts.jwks == 0


# -- audit finding 9: key fetching -----------------------------------------------------------------


async def test_audit_9_unknown_kid_flood_is_rate_limited(
    provider: FakeOpenIDProvider, caplog: pytest.LogCaptureFixture
) -> None:
    auth = openid(provider)
    key, _ = provider.keys[provider.current_kid]

    def unknown_kids(n: int) -> list[str]:
        return [provider.bearer(kid=f"unknown-{uuid.uuid4().hex[:8]}", key=key) for _ in range(n)]

    flood = unknown_kids(20)
    started = time.monotonic()
    results = await asyncio.gather(*(authenticate(auth, h) for h in flood), return_exceptions=True)
    concurrent_s = time.monotonic() - started
    assert all(isinstance(r, Forbidden) and r.message == UNKNOWN_KEY for r in results)
    concurrent = provider.counts.jwks
    for header in flood + unknown_kids(
        20
    ):  # the same 20 again, then 20 others, one after the other
        await refused(auth, header, caplog)
    total = provider.counts.jwks
    print(
        f"\n20 concurrent unknown-kid tokens: {concurrent} JWKS fetch(es) in {concurrent_s:.3f} s; "
        f"after 40 more one by one (the same 20, then 20 others): {total}"
    )
    assert concurrent == 1
    assert total == 1
    assert provider.counts.discovery == 1
    # the provider's real key works meanwhile, without another fetch
    assert (await authenticate(auth, provider.bearer())).roles == {Role.USER}
    assert provider.counts.jwks == 1


async def test_audit_9_unknown_kid_is_remembered_and_refreshes_are_spaced(
    provider: FakeOpenIDProvider, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    auth = openid_with_clock(
        provider, clock, refresh_min_interval_s=10.0, unknown_kid_ttl_s=60.0, keys_lifespan_s=3600.0
    )
    key, _ = provider.keys[provider.current_kid]
    await authenticate(auth, provider.bearer())  # fetch 1 at t=0
    assert provider.counts.jwks == 1
    clock.now += 5
    await refused(auth, provider.bearer(kid="x", key=key), caplog)  # within 10 s of the last fetch
    assert provider.counts.jwks == 1
    clock.now += 6
    await refused(auth, provider.bearer(kid="x", key=key), caplog)  # t=11: fetch 2, "x" is absent
    assert provider.counts.jwks == 2
    clock.now += 11
    await refused(auth, provider.bearer(kid="x", key=key), caplog)  # t=22: "x" is remembered
    assert provider.counts.jwks == 2
    await refused(auth, provider.bearer(kid="y", key=key), caplog)  # t=22: "y" is new: fetch 3
    assert provider.counts.jwks == 3
    clock.now += 50
    await refused(auth, provider.bearer(kid="x", key=key), caplog)  # t=72: "x" forgotten: fetch 4
    assert provider.counts.jwks == 4


async def test_audit_9_rotated_keys_are_picked_up_and_dropped_keys_expire(
    provider: FakeOpenIDProvider, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    auth = openid_with_clock(
        provider, clock, refresh_min_interval_s=10.0, unknown_kid_ttl_s=60.0, keys_lifespan_s=600.0
    )
    first = provider.current_kid
    first_key, _ = provider.keys[first]
    await authenticate(auth, provider.bearer())
    second = provider.rotate()  # Keycloak signs with a new key
    clock.now += 11
    assert (await authenticate(auth, provider.bearer(kid=second))).roles == {Role.USER}
    assert provider.counts.jwks == 2

    third = provider.rotate(drop_old=True)  # the old keys are withdrawn
    clock.now += 600
    # the key set is now older than its lifespan: a token with a known key is still answered at once, from
    # the old keys, while they are fetched again; a token with the new key waits for that fetch
    old = await authenticate(auth, provider.bearer(kid=first, key=first_key))
    assert old.roles == {Role.USER}
    await provider.wait_until(lambda c: c.jwks == 3, timeout_s=5)  # the refresh that answer started
    assert (await authenticate(auth, provider.bearer(kid=third))).roles == {Role.USER}
    assert provider.counts.jwks == 3
    # withdrawn keys are gone now
    await refused(auth, provider.bearer(kid=first, key=first_key), caplog)


async def test_audit_9_failing_provider_keeps_cached_keys(
    provider: FakeOpenIDProvider, caplog: pytest.LogCaptureFixture
) -> None:
    """A provider answering errors: cached keys stay in use, a token of a key not yet seen is refused (and not
    remembered as unknown, since nothing was learnt), and the next allowed fetch after recovery finds it."""
    clock = Clock()
    auth = openid_with_clock(provider, clock, refresh_min_interval_s=10.0, keys_lifespan_s=600.0)
    await authenticate(auth, provider.bearer())
    first = provider.current_kid
    provider.status = 503
    new = provider.rotate()
    clock.now += 700  # the keys are stale; their refresh fails
    assert (await authenticate(auth, provider.bearer(kid=first))).roles == {Role.USER}
    cause = await refused(auth, provider.bearer(kid=new), caplog)
    assert "could not be fetched" in cause
    assert (await authenticate(auth, provider.bearer(kid=first))).roles == {Role.USER}
    provider.status = 200
    clock.now += 11
    assert (await authenticate(auth, provider.bearer(kid=new))).roles == {Role.USER}
    assert (provider.counts.discovery, provider.counts.jwks) == (
        2,
        3,
    )  # discovery again after the error


@pytest.mark.parametrize(
    "body",
    [
        b"<html>not json</html>",
        b"[" * 100_000 + b"]" * 100_000,  # nested deeper than the JSON parser's recursion limit
        b"VALID JWKS PADDED TO 2 MB",
        b'{"no": "keys"}',
        b'{"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}, {"kty": "RSA", "kid": "r"}, 7]}',
    ],
    ids=["not json", "deep", "huge", "no keys", "no usable key"],
)
async def test_openid_malformed_jwks_refuses_tokens_without_error(
    provider: FakeOpenIDProvider, caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    if body == b"VALID JWKS PADDED TO 2 MB":  # the real keys, in an answer larger than 1 MB
        body = json.dumps({**provider.jwks(), "padding": "x" * 2_000_000}).encode()
    provider.jwks_body = body
    auth = openid(provider)
    with caplog.at_level(logging.WARNING, logger="skydriver.auth"):
        await refused(auth, provider.bearer(), caplog)
    assert any("fetching keys failed" in r.getMessage() for r in caplog.records)
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)


async def test_audit_9_slow_provider_does_not_block_cached_tokens(
    provider: FakeOpenIDProvider,
) -> None:
    # a refresh is allowed at once, so the unknown key ids below do make the (slow) provider be asked
    auth = openid(provider, openid_refresh_min_interval_s=0.01)
    seen = provider.bearer()
    await authenticate(auth, seen)  # keys fetched; this token is now verified and cached
    key, _ = provider.keys[provider.current_kid]

    provider.jwks_delay_s = 5.0  # the provider becomes slow
    started = time.monotonic()
    waiting = [
        asyncio.create_task(authenticate(auth, provider.bearer(kid=f"unknown-{i}", key=key)))
        for i in range(8)
    ]
    await provider.wait_until(lambda c: c.jwks_in_flight >= 1)

    t = time.monotonic()
    assert (await authenticate(auth, seen)).roles == {Role.USER}
    cached_s = time.monotonic() - t
    t = time.monotonic()
    assert (await authenticate(auth, provider.bearer())).roles == {Role.USER}  # new, known key
    new_token_s = time.monotonic() - t

    results = await asyncio.gather(*waiting, return_exceptions=True)
    waited_s = time.monotonic() - started
    print(
        f"\nwhile 8 unknown-kid requests waited on a 5 s JWKS: cached token {cached_s * 1000:.1f} ms, "
        f"new token {new_token_s * 1000:.1f} ms; the 8 were refused after {waited_s:.2f} s "
        f"(fetch timeout {FETCH_TIMEOUT_S} s), JWKS fetches {provider.counts.jwks - 1}"
    )
    assert cached_s < 0.5
    assert new_token_s < 0.5
    assert all(isinstance(r, Forbidden) and r.message == UNKNOWN_KEY for r in results)
    assert waited_s < FETCH_TIMEOUT_S + 1.0
    assert provider.counts.jwks - 1 == 1


async def test_audit_9_unreachable_provider_fails_fast(
    provider: FakeOpenIDProvider, caplog: pytest.LogCaptureFixture
) -> None:
    """A provider that never answers costs a new token at most the fetch timeout, then nothing until the
    next allowed refresh; a provider that is down does not affect tokens whose key is cached."""
    provider.discovery_delay_s = 10.0
    auth = openid(provider)
    t = time.monotonic()
    await refused(auth, provider.bearer(), caplog)
    first_s = time.monotonic() - t
    t = time.monotonic()
    await refused(auth, provider.bearer(), caplog)
    second_s = time.monotonic() - t
    print(
        f"\nprovider not answering: first new token refused after {first_s:.2f} s, next {second_s:.3f} s"
    )
    assert first_s < FETCH_TIMEOUT_S + 0.5
    assert second_s < 0.2
    assert provider.counts.discovery == 1

    # with the keys cached, the provider going down changes nothing for tokens of those keys
    provider.discovery_delay_s = 0.0
    cached = openid(provider)
    seen = provider.bearer()
    await authenticate(cached, seen)
    await provider.stop()
    assert (await authenticate(cached, seen)).roles == {Role.USER}
    assert (await authenticate(cached, provider.bearer())).roles == {Role.USER}
    key, _ = provider.keys[provider.current_kid]
    t = time.monotonic()
    await refused(cached, provider.bearer(kid="unknown", key=key), caplog)
    assert time.monotonic() - t < 0.2


async def test_audit_9_busy_default_thread_pool_does_not_delay_authentication(
    provider: FakeOpenIDProvider,
) -> None:
    """Key fetching and verification never wait for asyncio's default executor, which other code shares."""
    release = threading.Event()
    loop = asyncio.get_running_loop()
    blockers = [loop.run_in_executor(None, release.wait, 30.0) for _ in range(40)]
    try:
        auth = openid(provider)
        t = time.monotonic()
        principal = await authenticate(auth, provider.bearer(), timeout_s=5.0)
        elapsed_s = time.monotonic() - t
    finally:
        release.set()
        await asyncio.gather(*blockers)
    assert principal.roles == {Role.USER}
    assert elapsed_s < 2.0


# -- audit finding 15: the scan-scope claim --------------------------------------------------------


@pytest.mark.parametrize("scope", [None, "", 0, 17, [], ["abc"], {}, True])
async def test_audit_15_null_scope_is_refused_in_openid_mode(
    provider: FakeOpenIDProvider, caplog: pytest.LogCaptureFixture, scope: object
) -> None:
    """A scan-scope claim that is present must name a scan; anything else (null included) is refused, never
    read as "all scans"."""
    auth = openid(provider)
    system = {"skydriver-internal": {"roles": ["system"]}}
    token = provider.bearer(resource_access=system, **{SCAN_ID_CLAIM: scope})
    cause = await refused(auth, token, caplog)
    assert SCAN_ID_CLAIM in cause
    scoped = await authenticate(
        auth, provider.bearer(resource_access=system, **{SCAN_ID_CLAIM: "abc"})
    )
    assert scoped.scan_id == "abc"
