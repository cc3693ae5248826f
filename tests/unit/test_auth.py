"""skydriver.auth: tokens signed with real test keys, the claims -> roles mapping, the key file, the OpenID path
(keys injected, network blocked) and the `@requires` decorator on a small fake handler."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import socket
import stat
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jwt
import pytest
import tornado.web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, generate_private_key
from pydantic import ValidationError

from skydriver.auth import (
    AUTHENTICATION_FAILED,
    AUTHORIZATION_FAILED,
    ROLES_ATTR,
    SCAN_ID_CLAIM,
    Authenticator,
    AuthSettings,
    DenialReason,
    KeyFileError,
    LocalKeyAuthenticator,
    OpenIDAuthenticator,
    Principal,
    Role,
    build_authenticator,
    declared_roles,
    handler_roles,
    load_or_create_key,
    requires,
    roles_from_claims,
    undeclared_methods,
)
from skydriver.auth.settings import key_file
from skyscan_contract.errors import Forbidden

ISSUER = "https://keycloak.example.test/auth/realms/IceCube"


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests never connect anywhere: the OpenID path must work from injected keys alone."""

    def refuse(self: socket.socket, address: Any) -> None:
        raise OSError(f"network disabled in unit tests (connect to {address!r})")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture
def auth() -> LocalKeyAuthenticator:
    return LocalKeyAuthenticator(Ed25519PrivateKey.generate())


def sign(key: Ed25519PrivateKey, **overrides: Any) -> str:
    """A token like `issue_token`'s (user role), with claims overridden or removed (value None)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "skydriver-local",
        "aud": "skydriver",
        "sub": "tester",
        "iat": now,
        "exp": now + 600,
        "resource_access": {"skydriver-external": {"roles": ["users"]}},
    }
    claims.update(overrides)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm="EdDSA")


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def hs256(claims: dict[str, Any], secret: bytes) -> str:
    """Built by hand: PyJWT itself refuses to HMAC with a PEM key (the algorithm-confusion attack)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(json.dumps(claims).encode())
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


async def assert_authentication_fails(
    authenticator: Authenticator,
    header: str | None,
    caplog: pytest.LogCaptureFixture,
    reason: DenialReason | None = None,
) -> None:
    """Refused with `authentication failed: <reason>` (`reason`, if given, else any of the fixed ones)."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="skydriver.auth"):
        with pytest.raises(Forbidden) as info:
            await authenticator.authenticate(header)
    prefix, _, said = info.value.message.partition(": ")
    assert prefix == AUTHENTICATION_FAILED and said in set(DenialReason), info.value.message
    if reason is not None:
        assert said == reason, info.value.message
    assert info.value.status == 403
    assert any(r.getMessage().startswith("authentication failed:") for r in caplog.records)
    secret = (header or "").split()[-1] if header and header.strip() else None
    if secret and len(secret) > 8:  # the token (or whatever was sent) is never echoed or logged
        assert secret not in str(info.value)
        assert all(secret not in r.getMessage() for r in caplog.records)


# -- issuing and verifying -------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
async def test_issue_and_verify_round_trip(auth: LocalKeyAuthenticator, role: Role) -> None:
    token = auth.issue_token(role, subject="alice", ttl_s=60)
    principal = await auth.authenticate(f"Bearer {token}")
    assert principal.roles == {role}
    assert principal.subject == "alice"
    assert principal.scan_id is None
    assert principal.claims["aud"] == "skydriver"
    assert principal.claims["iss"] == "skydriver-local"
    # the scheme is case-insensitive
    assert (await auth.authenticate(f"bearer {token}")).roles == {role}


def test_issued_claim_layout(auth: LocalKeyAuthenticator) -> None:
    token = auth.issue_token(Role.SYSTEM, subject="scanner", ttl_s=120, scan_id="abc123")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["resource_access"] == {"skydriver-internal": {"roles": ["system"]}}
    assert claims[SCAN_ID_CLAIM] == "abc123"
    assert claims["exp"] - claims["iat"] == 120
    assert {"iss", "aud", "sub", "iat", "nbf", "exp", "jti"} <= claims.keys()
    assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "typ": "JWT", "kid": auth.key_id}
    user = jwt.decode(
        auth.issue_token(Role.USER, subject="u", ttl_s=5), options={"verify_signature": False}
    )
    assert user["resource_access"] == {"skydriver-external": {"roles": ["users"]}}
    assert SCAN_ID_CLAIM not in user


@pytest.mark.parametrize(
    "kwargs",
    [
        {"subject": "x", "ttl_s": 0},
        {"subject": "", "ttl_s": 10},
        {"subject": "x", "ttl_s": 10, "scan_id": ""},
    ],
)
def test_issue_token_rejects_bad_arguments(auth: LocalKeyAuthenticator, kwargs: Any) -> None:
    with pytest.raises(ValueError):
        auth.issue_token(Role.USER, **kwargs)


# -- claims -> roles -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource_access", "expected"),
    [
        ({"skydriver-external": {"roles": ["users"]}}, {Role.USER}),
        ({"skydriver-internal": {"roles": ["system"]}}, {Role.SYSTEM}),
        (
            {
                "skydriver-external": {"roles": ["admins", "users"]},
                "skydriver-internal": {"roles": ["system"]},
                "account": {"roles": ["manage-account"]},
            },
            {Role.USER, Role.SYSTEM},
        ),
        # the value must sit under the right client
        ({"skydriver-external": {"roles": ["system"]}}, set()),
        ({"skydriver-internal": {"roles": ["users"]}}, set()),
        ({"account": {"roles": ["users", "system"]}}, set()),
        # malformed claims grant nothing (a string is not a list: "users" in "superusers" must not count)
        ({"skydriver-external": {"roles": "superusers"}}, set()),
        ({"skydriver-external": ["users"]}, set()),
        (["skydriver-external"], set()),
        (None, set()),
    ],
)
def test_roles_from_claims(resource_access: Any, expected: set[Role]) -> None:
    assert roles_from_claims({"resource_access": resource_access}) == expected


def test_roles_from_claims_without_resource_access() -> None:
    assert roles_from_claims({"sub": "x", "realm_access": {"roles": ["users"]}}) == set()


# -- authentication failures -------------------------------------------------------------------


async def test_authentication_failures(
    auth: LocalKeyAuthenticator, caplog: pytest.LogCaptureFixture
) -> None:
    key = auth._private_key
    now = int(time.time())
    other = LocalKeyAuthenticator(Ed25519PrivateKey.generate())
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    why = DenialReason
    headers: dict[str, tuple[str | None, DenialReason]] = {
        "missing header": (None, why.NO_TOKEN),
        "empty header": ("", why.NO_TOKEN),
        "basic auth": ("Basic x", why.MALFORMED),
        "basic with token": (
            "Basic " + auth.issue_token(Role.USER, subject="a", ttl_s=60),
            why.MALFORMED,
        ),
        "no scheme": (auth.issue_token(Role.USER, subject="a", ttl_s=60), why.MALFORMED),
        "bearer only": ("Bearer", why.MALFORMED),
        "extra part": ("Bearer a b", why.MALFORMED),
        "garbage": ("Bearer not.a.jwt-at-all", why.MALFORMED),
        "expired": (f"Bearer {sign(key, iat=now - 7200, exp=now - 3600)}", why.EXPIRED),
        "not yet valid": (f"Bearer {sign(key, nbf=now + 3600)}", why.NOT_YET_VALID),
        "wrong audience": (f"Bearer {sign(key, aud='someone-else')}", why.WRONG_AUDIENCE),
        "no audience": (f"Bearer {sign(key, aud=None)}", why.MALFORMED),
        "wrong issuer": (f"Bearer {sign(key, iss='elsewhere')}", why.WRONG_ISSUER),
        "no exp": (f"Bearer {sign(key, exp=None)}", why.MALFORMED),
        "no sub": (f"Bearer {sign(key, sub=None)}", why.MALFORMED),
        "other key": (
            f"Bearer {other.issue_token(Role.USER, subject='a', ttl_s=60)}",
            why.BAD_SIGNATURE,
        ),
        "unsigned (alg none)": (
            "Bearer " + jwt.encode(claims_of(sign(key)), "", "none"),
            why.MALFORMED,
        ),
        "HS256 keyed with the public key": (
            f"Bearer {hs256(claims_of(sign(key)), public_pem)}",
            why.MALFORMED,
        ),
        "scan scope not a string": (
            f"Bearer {sign(key, **{SCAN_ID_CLAIM: ['a', 'b']})}",
            why.MALFORMED,
        ),
        "huge": ("Bearer " + "a" * 20000, why.MALFORMED),
    }
    for name, (header, reason) in headers.items():
        try:
            await assert_authentication_fails(auth, header, caplog, reason)
        except AssertionError as e:
            raise AssertionError(f"case {name!r}: {e}") from e


@pytest.mark.parametrize("scope", [None, "", 0, False, [], ["aaa"], {}, {"id": "aaa"}])
async def test_audit_15_null_scope_is_refused(
    auth: LocalKeyAuthenticator, caplog: pytest.LogCaptureFixture, scope: object
) -> None:
    """A scan-scope claim that is present must name a scan. A null (or any non-string) is refused, never read
    as an unscoped token."""
    claims = claims_of(auth.issue_token(Role.SYSTEM, subject="scanner", ttl_s=60))
    claims[SCAN_ID_CLAIM] = scope
    token = jwt.encode(claims, auth._private_key, algorithm="EdDSA")
    await assert_authentication_fails(auth, f"Bearer {token}", caplog)
    assert any(SCAN_ID_CLAIM in r.getMessage() for r in caplog.records)
    # controls: the same token scoped to a scan, and without the claim
    claims[SCAN_ID_CLAIM] = "aaa"
    scoped = jwt.encode(claims, auth._private_key, algorithm="EdDSA")
    assert (await auth.authenticate(f"Bearer {scoped}")).scan_id == "aaa"
    del claims[SCAN_ID_CLAIM]
    unscoped = jwt.encode(claims, auth._private_key, algorithm="EdDSA")
    assert (await auth.authenticate(f"Bearer {unscoped}")).scan_id is None


async def test_small_clock_skew_is_tolerated(auth: LocalKeyAuthenticator) -> None:
    now = int(time.time())
    token = sign(auth._private_key, iat=now + 5, nbf=now + 5, exp=now - 5)
    assert (await auth.authenticate(f"Bearer {token}")).roles == {Role.USER}


# -- key file ----------------------------------------------------------------------------------


async def test_key_file_created_0600_and_reused(tmp_path: Path) -> None:
    key_file = tmp_path / "state" / "auth" / "signing-key.pem"
    first = LocalKeyAuthenticator.from_key_file(key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert os.listdir(key_file.parent) == ["signing-key.pem"]  # no temporary file left
    content = key_file.read_bytes()

    second = LocalKeyAuthenticator.from_key_file(key_file)  # a restart
    assert key_file.read_bytes() == content
    assert second.key_id == first.key_id
    token = first.issue_token(Role.SYSTEM, subject="launcher", ttl_s=60)
    assert (await second.authenticate(f"Bearer {token}")).roles == {Role.SYSTEM}


def test_key_file_racing_creators_agree(tmp_path: Path) -> None:
    key_file = tmp_path / "signing-key.pem"
    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda _: load_or_create_key(key_file), range(16)))
    raw = {
        k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        for k in keys
    }
    assert len(raw) == 1
    assert os.listdir(tmp_path) == ["signing-key.pem"]


def test_key_file_open_to_others_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "signing-key.pem"
    load_or_create_key(key_file)
    key_file.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_or_create_key(key_file)


@pytest.mark.parametrize("content", [b"", b"not a key", b"rsa"])
def test_unusable_key_file_is_refused(tmp_path: Path, content: bytes) -> None:
    key_file = tmp_path / "signing-key.pem"
    if content == b"rsa":
        content = generate_private_key(65537, 2048).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    key_file.write_bytes(content)
    key_file.chmod(0o600)
    with pytest.raises(KeyFileError, match="delete it"):
        load_or_create_key(key_file)
    assert key_file.read_bytes() == content  # never overwritten


# -- OpenID (keys injected; the network is blocked) --------------------------------------------


@pytest.fixture(scope="module")
def rsa_key() -> RSAPrivateKey:
    return generate_private_key(65537, 2048)


def openid_authenticator(
    rsa_key: RSAPrivateKey, audience: str = "skydriver"
) -> OpenIDAuthenticator:
    """Keys taken from a JWKS document, as the provider's `jwks_uri` would serve it."""
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True)
    jwks = {"keys": [{**jwk, "kid": "kc-1", "use": "sig", "alg": "RS256"}]}
    return OpenIDAuthenticator(ISSUER, audience=audience, jwks=jwks)


def keycloak_token(rsa_key: RSAPrivateKey, kid: str | None = "kc-1", **overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": ["skydriver", "account"],
        "sub": "5f0c-uuid",
        "azp": "skydriver-external",
        "preferred_username": "alice",
        "iat": now,
        "exp": now + 300,
        "resource_access": {
            "skydriver-external": {"roles": ["users"]},
            "account": {"roles": ["view-profile"]},
        },
    }
    claims.update(overrides)
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims, rsa_key, algorithm="RS256", headers=headers)


async def test_openid_valid_token(rsa_key: RSAPrivateKey) -> None:
    auth = openid_authenticator(rsa_key)
    principal = await auth.authenticate(f"Bearer {keycloak_token(rsa_key)}")
    assert principal.roles == {Role.USER}
    assert principal.subject == "5f0c-uuid"
    system = keycloak_token(rsa_key, resource_access={"skydriver-internal": {"roles": ["system"]}})
    assert (await auth.authenticate(f"Bearer {system}")).roles == {Role.SYSTEM}


async def test_openid_rejections(rsa_key: RSAPrivateKey, caplog: pytest.LogCaptureFixture) -> None:
    auth = openid_authenticator(rsa_key)
    now = int(time.time())
    why = DenialReason
    local = LocalKeyAuthenticator(Ed25519PrivateKey.generate())
    for header, reason in [
        (None, why.NO_TOKEN),
        ("Basic x", why.MALFORMED),
        (f"Bearer {keycloak_token(rsa_key, aud='other-service')}", why.WRONG_AUDIENCE),
        (
            f"Bearer {keycloak_token(rsa_key, iss='https://evil.example/auth/realms/IceCube')}",
            why.WRONG_ISSUER,
        ),
        (f"Bearer {keycloak_token(rsa_key, iss=ISSUER + '/')}", why.WRONG_ISSUER),
        (f"Bearer {keycloak_token(rsa_key, exp=now - 3600, iat=now - 7200)}", why.EXPIRED),
        (f"Bearer {keycloak_token(rsa_key, kid='unknown-kid')}", why.UNKNOWN_KEY),
        (f"Bearer {keycloak_token(rsa_key, kid=None)}", why.MALFORMED),
        # same kid, other key
        (f"Bearer {keycloak_token(generate_private_key(65537, 2048))}", why.BAD_SIGNATURE),
        (f"Bearer {local.issue_token(Role.USER, subject='a', ttl_s=60)}", why.MALFORMED),
        ("Bearer garbage", why.MALFORMED),
    ]:
        await assert_authentication_fails(auth, header, caplog, reason)


async def test_openid_construction_does_no_io_and_unreachable_provider_denies(
    caplog: pytest.LogCaptureFixture, rsa_key: RSAPrivateKey
) -> None:
    # nothing is fetched here: the socket guard would make construction raise
    auth = OpenIDAuthenticator("http://127.0.0.1:9/auth/realms/IceCube")
    # the first request tries discovery, which fails: the caller gets a 403, not a 500
    with caplog.at_level(logging.WARNING, logger="skydriver.auth"):
        await assert_authentication_fails(auth, f"Bearer {keycloak_token(rsa_key)}", caplog)
    assert any("fetching keys failed" in r.getMessage() for r in caplog.records)


# -- settings ----------------------------------------------------------------------------------


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert AuthSettings().mode == "local"
    assert AuthSettings().audience == "skydriver"
    # by default the key is in SkyDriver's state directory, wherever the command runs
    assert AuthSettings().key_file is None
    assert key_file(AuthSettings(), tmp_path / "state") == tmp_path / "state/auth/signing-key.pem"
    monkeypatch.setenv("SKYDRIVER_AUTH_KEY_FILE", str(tmp_path / "k.pem"))
    monkeypatch.setenv("SKYDRIVER_AUTH_SYSTEM_TOKEN_TTL_S", "3600")
    settings = AuthSettings()
    assert settings.key_file == tmp_path / "k.pem"
    assert settings.system_token_ttl_s == 3600
    authenticator = build_authenticator(settings, tmp_path / "state")
    assert isinstance(authenticator, LocalKeyAuthenticator)
    assert (tmp_path / "k.pem").exists() and not (tmp_path / "state").exists()


def test_openid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKYDRIVER_AUTH_MODE", "openid")
    with pytest.raises(ValidationError, match="SKYDRIVER_AUTH_OPENID_URL"):
        AuthSettings()
    monkeypatch.setenv("SKYDRIVER_AUTH_OPENID_URL", ISSUER)
    monkeypatch.setenv("SKYDRIVER_AUTH_AUDIENCE", "skydriver-dev")
    authenticator = build_authenticator(AuthSettings(), Path("/nonexistent"))
    assert isinstance(authenticator, OpenIDAuthenticator)
    assert authenticator.audience == "skydriver-dev"
    assert authenticator.issuer == ISSUER
    assert authenticator.leeway_s == 30.0
    assert (authenticator.keys.fetch_timeout_s, authenticator.keys.lifespan_s) == (5.0, 600.0)
    assert authenticator.keys.refresh_min_interval_s == 10.0
    assert authenticator.keys.unknown_kid_ttl_s == 60.0
    monkeypatch.setenv("SKYDRIVER_AUTH_OPENID_FETCH_TIMEOUT_S", "2.5")
    monkeypatch.setenv("SKYDRIVER_AUTH_OPENID_KEYS_LIFESPAN_S", "120")
    monkeypatch.setenv("SKYDRIVER_AUTH_OPENID_REFRESH_MIN_INTERVAL_S", "30")
    monkeypatch.setenv("SKYDRIVER_AUTH_OPENID_UNKNOWN_KID_TTL_S", "0")
    authenticator = build_authenticator(AuthSettings(), Path("/nonexistent"))
    assert isinstance(authenticator, OpenIDAuthenticator)
    keys = authenticator.keys
    assert (keys.fetch_timeout_s, keys.lifespan_s, keys.refresh_min_interval_s) == (
        2.5,
        120.0,
        30.0,
    )
    assert keys.unknown_kid_ttl_s == 0.0
    for name, bad in [
        ("SKYDRIVER_AUTH_OPENID_FETCH_TIMEOUT_S", "0"),
        ("SKYDRIVER_AUTH_OPENID_REFRESH_MIN_INTERVAL_S", "0"),
        ("SKYDRIVER_AUTH_OPENID_URL", "keycloak.example.test/realms/IceCube"),
    ]:
        with monkeypatch.context() as m:
            m.setenv(name, bad)
            field = name.removeprefix("SKYDRIVER_AUTH_").lower()
            with pytest.raises(ValidationError, match=f"(?i){field}"):
                AuthSettings()
    monkeypatch.setenv("SKYDRIVER_AUTH_MODE", "nobody")
    with pytest.raises(ValidationError):
        AuthSettings()


# -- @requires ---------------------------------------------------------------------------------


class FakeHandler:
    """Stands in for BaseHandler: authenticates the header once per request."""

    def __init__(self, authenticator: Authenticator, header: str | None) -> None:
        self.authenticator = authenticator
        self.header = header
        self.ran: list[str] = []

    async def current_principal(self) -> Principal:
        return await self.authenticator.authenticate(self.header)

    @requires(Role.USER)
    async def post(self) -> str:
        self.ran.append("post")
        return "launched"

    @requires(Role.USER, Role.SYSTEM)
    async def get(self, scan_id: str) -> str:
        self.ran.append("get")
        return scan_id

    @requires(Role.SYSTEM)
    async def patch(self, scan_id: str) -> str:
        self.ran.append("patch")
        return scan_id


@pytest.fixture
def tokens(auth: LocalKeyAuthenticator) -> Iterator[dict[str, str]]:
    yield {
        "user": auth.issue_token(Role.USER, subject="alice", ttl_s=60),
        "system": auth.issue_token(Role.SYSTEM, subject="watchdog", ttl_s=60),
        "scan_a": auth.issue_token(Role.SYSTEM, subject="scanner", ttl_s=60, scan_id="aaa"),
    }


NO_TOKEN = f"{AUTHENTICATION_FAILED}: {DenialReason.NO_TOKEN}"
WRONG_ROLE = f"{AUTHORIZATION_FAILED}: {DenialReason.WRONG_ROLE}"
WRONG_SCAN = f"{AUTHORIZATION_FAILED}: {DenialReason.WRONG_SCAN}"


async def call(handler: FakeHandler, method: str, **kwargs: str) -> Any:
    return await getattr(handler, method)(**kwargs)


@pytest.mark.parametrize(
    ("who", "method", "kwargs", "outcome"),
    [
        (None, "post", {}, NO_TOKEN),
        (None, "get", {"scan_id": "aaa"}, NO_TOKEN),
        ("user", "post", {}, "launched"),
        ("user", "get", {"scan_id": "aaa"}, "aaa"),
        ("user", "patch", {"scan_id": "aaa"}, WRONG_ROLE),
        ("system", "post", {}, WRONG_ROLE),
        ("system", "get", {"scan_id": "bbb"}, "bbb"),
        ("system", "patch", {"scan_id": "bbb"}, "bbb"),
        ("scan_a", "patch", {"scan_id": "aaa"}, "aaa"),
        ("scan_a", "get", {"scan_id": "aaa"}, "aaa"),
        ("scan_a", "patch", {"scan_id": "bbb"}, WRONG_SCAN),
        ("scan_a", "get", {"scan_id": "bbb"}, WRONG_SCAN),
        ("scan_a", "post", {}, WRONG_ROLE),
    ],
)
async def test_requires(
    auth: LocalKeyAuthenticator,
    tokens: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    who: str | None,
    method: str,
    kwargs: dict[str, str],
    outcome: str,
) -> None:
    handler = FakeHandler(auth, f"Bearer {tokens[who]}" if who else None)
    with caplog.at_level(logging.INFO, logger="skydriver.auth"):
        if outcome in (NO_TOKEN, WRONG_ROLE, WRONG_SCAN):
            with pytest.raises(Forbidden) as info:
                await call(handler, method, **kwargs)
            assert info.value.message == outcome
            assert handler.ran == []
        else:
            assert await call(handler, method, **kwargs) == outcome
            assert handler.ran == [method]
    assert all(t not in r.getMessage() for t in tokens.values() for r in caplog.records)


async def test_scoped_principal_needs_a_scan_route() -> None:
    principal = Principal(subject="s", roles=frozenset({Role.SYSTEM}), scan_id="aaa")
    assert principal.may_access_scan("aaa")
    assert not principal.may_access_scan("aab")
    assert not principal.may_access_scan(None)
    assert Principal(subject="u", roles=frozenset({Role.USER})).may_access_scan(None)


def test_roles_are_recorded() -> None:
    assert declared_roles(FakeHandler.get) == (Role.USER, Role.SYSTEM)
    assert getattr(FakeHandler.patch, ROLES_ATTR) == (Role.SYSTEM,)
    assert FakeHandler.get.__name__ == "get"  # functools.wraps kept the name for logs and docs

    class Routes(tornado.web.RequestHandler):
        async def current_principal(self) -> Principal:
            raise NotImplementedError

        @requires(Role.USER, "system", Role.USER)  # type: ignore[arg-type]  # known names are accepted
        async def get(self) -> None: ...

        async def delete(self) -> None: ...

    assert handler_roles(Routes) == {"GET": (Role.USER, Role.SYSTEM)}
    assert undeclared_methods(Routes) == ["DELETE"]


class Bare:
    async def current_principal(self) -> Principal:
        raise NotImplementedError


def test_bad_declarations_fail_at_class_definition() -> None:
    with pytest.raises(TypeError, match="unknown role 'admin'"):

        class _Unknown(Bare):
            @requires("admin")  # type: ignore[arg-type]
            async def get(self) -> None: ...

    with pytest.raises(TypeError, match="at least one role"):
        requires()

    with pytest.raises(TypeError, match="async"):

        class _Sync(Bare):
            @requires(Role.USER)  # type: ignore[arg-type]
            def get(self) -> None: ...
