"""Who is calling, and may they call this route: bearer tokens, roles and the `@requires` decorator.

Two roles, mapped from token claims exactly as the original SkyDriver does (reference §1):

    role     claim                                      must contain
    user     resource_access.skydriver-external.roles  "users"
    system   resource_access.skydriver-internal.roles  "system"

A verified token becomes a `Principal`. A token may also carry `skydriver_scan_id`: it then only opens routes
whose `scan_id` path argument is that scan. The launcher gives such scan-scoped system tokens to a scan's
server and client manager, so a leaked one reaches a single scan.

Two authenticators share the `Authenticator` protocol:

- `LocalKeyAuthenticator` (one machine, the default). An Ed25519 key is created once in a key file (mode 0600,
  written atomically) and reused on restart. It verifies the tokens it signs and issues them (`issue_token`).
- `OpenIDAuthenticator` (production). Tokens from an OpenID provider (Keycloak) are checked with
  `rest_tools.utils.auth.OpenIDAuth`. Its keys are fetched on first use, in a thread, never at import or
  construction.

Status codes. A missing, malformed, expired or wrongly signed token, or one for another audience, gives
**403 `authentication failed`**. A valid token without a required role, or scoped to another scan, gives
**403 `authorization failed`**. RFC 7235 would answer the first case with 401 and a `WWW-Authenticate` header. We
keep 403 because the original does (rest_tools' handlers) and its clients match the text
"403 Client Error: authentication failed"; JupyterHub's `needs_scope` also answers missing credentials with a
plain 403. The message never contains the token or the verifier's exception text. The cause is logged at INFO,
without the token.

There is no switch that turns auth off (the original does this when `CI=true`). Tests sign real tokens with a test
key.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import logging
import os
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Concatenate, Literal, ParamSpec, Protocol, Self, TypeVar, cast

import jwt
import tornado.web
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from rest_tools.utils.auth import BadJwtKey, OpenIDAuth

from skyscan_contract.errors import Forbidden

LOG = logging.getLogger(__name__)

AUTHENTICATION_FAILED = "authentication failed"
AUTHORIZATION_FAILED = "authorization failed"
DEFAULT_AUDIENCE = "skydriver"
LOCAL_ISSUER = "skydriver-local"
SCAN_ID_CLAIM = "skydriver_scan_id"
ROLES_ATTR = "__skydriver_roles__"
MAX_TOKEN_CHARS = 16384
HTTP_METHODS = ("get", "head", "post", "put", "patch", "delete", "options")


class Role(StrEnum):
    USER = "user"
    SYSTEM = "system"


ROLE_CLAIMS: dict[Role, tuple[str, str]] = {
    Role.USER: ("skydriver-external", "users"),
    Role.SYSTEM: ("skydriver-internal", "system"),
}
"""Role -> (client under `resource_access`, value its `roles` list must contain)."""


def roles_from_claims(claims: Mapping[str, Any]) -> set[Role]:
    """The roles a token's claims grant. Malformed claims (a string where a list belongs…) grant nothing."""
    access = claims.get("resource_access")
    if not isinstance(access, Mapping):
        return set()
    roles: set[Role] = set()
    for role, (client, value) in ROLE_CLAIMS.items():
        entry = access.get(client)
        listed = entry.get("roles") if isinstance(entry, Mapping) else None
        if isinstance(listed, list | tuple) and value in listed:
            roles.add(role)
    return roles


@dataclass(frozen=True)
class Principal:
    """A verified caller. `scan_id` is None, or the only scan this caller may touch."""

    subject: str
    roles: frozenset[Role]
    scan_id: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def may_access_scan(self, scan_id: object) -> bool:
        return self.scan_id is None or (isinstance(scan_id, str) and scan_id == self.scan_id)


class Authenticator(Protocol):
    async def authenticate(self, authorization_header: str | None) -> Principal:
        """The caller behind an `Authorization` header; `Forbidden("authentication failed")` if none."""
        ...


class TokenIssuer(Protocol):
    def issue_token(
        self, role: Role, *, subject: str, ttl_s: int, scan_id: str | None = None
    ) -> str: ...


def _authentication_failed(cause: str, token: str | None = None) -> Forbidden:
    if token:
        cause = cause.replace(token, "<token>")
    LOG.info("authentication failed: %s", " ".join(cause.split())[:300])  # one line, bounded
    return Forbidden(AUTHENTICATION_FAILED)


def _cause(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def bearer_token(authorization_header: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive)."""
    if not authorization_header or not authorization_header.strip():
        raise _authentication_failed("no Authorization header")
    parts = authorization_header.split()
    # never log parts[0]: a client that forgot "Bearer " sends its token there
    if len(parts) != 2 or parts[0].lower() != "bearer":
        raise _authentication_failed("Authorization header is not 'Bearer <token>'")
    if len(parts[1]) > MAX_TOKEN_CHARS:
        raise _authentication_failed(f"token longer than {MAX_TOKEN_CHARS} characters")
    return parts[1]


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    """A Principal from verified claims. A scan scope that is present but not a non-empty string is refused
    (ignoring it would widen the token's reach)."""
    scan_id = claims.get(SCAN_ID_CLAIM)
    if scan_id is not None and not (isinstance(scan_id, str) and scan_id):
        raise _authentication_failed(f"claim {SCAN_ID_CLAIM!r} is not a non-empty string")
    subject = next(
        (v for k in ("sub", "preferred_username", "azp") if isinstance(v := claims.get(k), str)),
        "",
    )
    return Principal(
        subject=subject,
        roles=frozenset(roles_from_claims(claims)),
        scan_id=scan_id,
        claims=dict(claims),
    )


# -- local signing key -------------------------------------------------------------------------


class KeyFileError(RuntimeError):
    """The signing-key file exists but cannot be used (unreadable, not an Ed25519 key, or too open)."""


def _read_key(path: Path) -> Ed25519PrivateKey:
    with open(path, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode & 0o777
        if mode & 0o077:
            raise KeyFileError(
                f"signing key {path} is open to other users (mode {mode:o}); run 'chmod 600 {path}', or "
                "delete it to create a new key (tokens already issued stop working)"
            )
        data = f.read()
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise KeyFileError(
            f"signing key {path} is not an unencrypted PEM private key; delete it to create a new one"
        ) from e
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(
            f"signing key {path} is not an Ed25519 key; delete it to create a new one"
        )
    return key


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 key in `path`, created first if missing. The file appears complete or not at all (written to
    a temporary file, then hard-linked into place). When several processes race, all use the winner's key."""
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            LOG.info("signing key %s was created by another process; using it", path)
            return _read_key(path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        tmp.unlink(missing_ok=True)
    LOG.info("created signing key %s", path)
    return key


class LocalKeyAuthenticator:
    """Signs and verifies EdDSA tokens with one local key (audience, issuer, `exp` and `iat` required)."""

    algorithm = "EdDSA"

    def __init__(
        self,
        private_key: Ed25519PrivateKey,
        *,
        audience: str = DEFAULT_AUDIENCE,
        issuer: str = LOCAL_ISSUER,
        leeway_s: float = 30.0,
    ) -> None:
        self._private_key = private_key
        self._public_key: Ed25519PublicKey = private_key.public_key()
        raw = self._public_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.key_id = hashlib.sha256(raw).hexdigest()[:16]
        self.audience = audience
        self._verified = VerifiedTokens()
        self.issuer = issuer
        self.leeway_s = leeway_s

    @classmethod
    def from_key_file(
        cls,
        key_file: Path,
        *,
        audience: str = DEFAULT_AUDIENCE,
        issuer: str = LOCAL_ISSUER,
        leeway_s: float = 30.0,
    ) -> Self:
        """Uses the key in `key_file`, creating it (and its directory, 0700) on first start."""
        return cls(
            load_or_create_key(key_file), audience=audience, issuer=issuer, leeway_s=leeway_s
        )

    def issue_token(
        self, role: Role, *, subject: str, ttl_s: int, scan_id: str | None = None
    ) -> str:
        """A token granting `role` for `ttl_s` seconds; with `scan_id`, only for that scan's routes."""
        role = Role(role)
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be > 0 seconds, got {ttl_s}")
        if not subject:
            raise ValueError("subject must be a non-empty string (who the token is for)")
        if scan_id is not None and not scan_id:
            raise ValueError("scan_id must be None (all scans) or a non-empty scan id")
        now = int(time.time())
        client, value = ROLE_CLAIMS[role]
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + ttl_s,
            "jti": uuid.uuid4().hex,
            "resource_access": {client: {"roles": [value]}},
        }
        if scan_id is not None:
            claims[SCAN_ID_CLAIM] = scan_id
        return jwt.encode(
            claims, self._private_key, algorithm=self.algorithm, headers={"kid": self.key_id}
        )

    async def authenticate(self, authorization_header: str | None) -> Principal:
        token = bearer_token(authorization_header)
        if (known := self._verified.get(token)) is not None:
            return known
        try:
            claims = jwt.decode(
                token,
                self._public_key,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as e:
            raise _authentication_failed(_cause(e), token) from e
        principal = principal_from_claims(claims)
        self._verified.put(token, principal)
        return principal


class VerifiedTokens:
    """Tokens already verified, until they expire: a status poll every second must not cost a signature
    check (or, with OpenID, a thread hop) each time. Bounded; the oldest entries go first."""

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._cache: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def get(self, token: str) -> Principal | None:
        hit = self._cache.get(token)
        if hit is None:
            return None
        principal, exp = hit
        if exp <= time.time():
            del self._cache[token]
            return None
        return principal

    def put(self, token: str, principal: Principal) -> None:
        exp = principal.claims.get("exp")
        if not isinstance(exp, int | float):
            return
        self._cache[token] = (principal, float(exp))
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)


# -- OpenID provider ---------------------------------------------------------------------------


class _Validator(Protocol):
    def validate(self, token: str, **kwargs: Any) -> dict[str, Any]: ...


class OpenIDAuthenticator:
    """Verifies tokens of an OpenID provider (`url` is the issuer, e.g. a Keycloak realm) for `audience`.

    No network I/O happens here: discovery and the key set are fetched on the first `authenticate` (or
    `prefetch_keys`) in a worker thread, and again by rest_tools when a token names an unknown key. Passing both
    `provider_info` and `public_keys` (kid -> key, as `jwt.PyJWKSet.from_dict(jwks)` gives) disables fetching.
    """

    def __init__(
        self,
        url: str,
        *,
        audience: str = DEFAULT_AUDIENCE,
        leeway_s: float = 60.0,
        provider_info: Mapping[str, Any] | None = None,
        public_keys: Mapping[str, Any] | None = None,
    ) -> None:
        if not url:
            raise ValueError("OpenID provider URL is empty (set SKYDRIVER_AUTH_OPENID_URL)")
        self.url = url
        self.audience = audience
        self._verified = VerifiedTokens()
        self.leeway_s = leeway_s
        self._provider_info = dict(provider_info) if provider_info else None
        self._public_keys = dict(public_keys) if public_keys else None
        self._validator: _Validator | None = None
        self._lock = asyncio.Lock()

    def _make_validator(self) -> _Validator:
        auth = OpenIDAuth(
            self.url,
            provider_info=self._provider_info,
            public_keys=self._public_keys,
            audience=self.audience,
            leeway=self.leeway_s,
        )
        return cast(_Validator, auth)

    async def _get_validator(self) -> _Validator:
        if self._validator is None:
            async with self._lock:
                if self._validator is None:
                    self._validator = await asyncio.to_thread(self._make_validator)
        return self._validator

    async def prefetch_keys(self) -> None:
        """Fetch discovery and keys now (optional; otherwise the first request does)."""
        await self._get_validator()

    async def authenticate(self, authorization_header: str | None) -> Principal:
        token = bearer_token(authorization_header)
        if (known := self._verified.get(token)) is not None:
            return known
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as e:
            raise _authentication_failed(_cause(e), token) from e
        if not isinstance(kid, str):
            raise _authentication_failed("token header has no key id ('kid')")
        validator = await self._get_validator()
        try:
            claims = await asyncio.to_thread(validator.validate, token, audience=self.audience)
        except (jwt.PyJWTError, BadJwtKey) as e:
            raise _authentication_failed(_cause(e), token) from e
        principal = principal_from_claims(claims)
        self._verified.put(token, principal)
        return principal


# -- settings ----------------------------------------------------------------------------------


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SKYDRIVER_AUTH_", extra="ignore")

    mode: Literal["local", "openid"] = Field(
        "local", description="local: tokens signed with key_file; openid: tokens of openid_url"
    )
    key_file: Path = Field(
        Path(".state/skydriver/auth/signing-key.pem"),
        description="local mode: Ed25519 signing key, created (0600) on first start and reused",
    )
    openid_url: str = Field(
        "", description="openid mode: the provider (issuer) URL, e.g. a Keycloak realm"
    )
    audience: str = Field(
        DEFAULT_AUDIENCE, min_length=1, description="required 'aud' of every token"
    )
    token_ttl_s: int = Field(
        86_400, gt=0, description="seconds a user token issued in local mode stays valid"
    )
    system_token_ttl_s: int = Field(
        14 * 86_400,
        gt=0,
        description="seconds a scan-scoped system token (given to a scan's instance) stays valid; "
        "must outlast the scan",
    )

    @model_validator(mode="after")
    def _openid_needs_url(self) -> Self:
        if self.mode == "openid" and not self.openid_url:
            raise ValueError(
                "SKYDRIVER_AUTH_OPENID_URL must be set when SKYDRIVER_AUTH_MODE=openid "
                "(e.g. https://keycloak.icecube.wisc.edu/auth/realms/IceCube)"
            )
        return self


def build_authenticator(settings: AuthSettings) -> Authenticator:
    """The authenticator of `settings.mode`. Local mode reads (or creates) the key file now."""
    if settings.mode == "openid":
        return OpenIDAuthenticator(settings.openid_url, audience=settings.audience)
    return LocalKeyAuthenticator.from_key_file(settings.key_file, audience=settings.audience)


# -- route declarations ------------------------------------------------------------------------


class HasPrincipal(Protocol):
    """What `@requires` needs from a handler: the (cached) caller of this request."""

    async def current_principal(self) -> Principal: ...


_H = TypeVar("_H", bound=HasPrincipal)
_P = ParamSpec("_P")
_R = TypeVar("_R")


def requires(
    *roles: Role,
) -> Callable[
    [Callable[Concatenate[_H, _P], Coroutine[Any, Any, _R]]],
    Callable[Concatenate[_H, _P], Coroutine[Any, Any, _R]],
]:
    """Declare the roles that may call a handler method; a caller needs one of them.

    The caller is authenticated first (403 `authentication failed`), then must hold one of `roles` and, if its
    token is scoped to a scan, the route's `scan_id` path argument must be that scan (403 `authorization
    failed`; a scoped caller cannot use routes without `scan_id`). The roles are kept on the method as
    `__skydriver_roles__` for the OpenAPI document (`declared_roles`, `handler_roles`). An unknown role or an
    empty list raises TypeError when the class is defined.
    """
    if not roles:
        raise TypeError("@requires needs at least one role, e.g. @requires(Role.USER)")
    checked: list[Role] = []
    for r in roles:
        try:
            role = Role(r)
        except ValueError:
            known = ", ".join(repr(x.value) for x in Role)
            raise TypeError(f"@requires: unknown role {r!r} (known: {known})") from None
        if role not in checked:
            checked.append(role)
    declared = tuple(checked)

    def decorate(
        method: Callable[Concatenate[_H, _P], Coroutine[Any, Any, _R]],
    ) -> Callable[Concatenate[_H, _P], Coroutine[Any, Any, _R]]:
        if not inspect.iscoroutinefunction(method):
            raise TypeError(f"@requires decorates async handler methods; {method!r} is not one")

        @functools.wraps(method)
        async def wrapper(self: _H, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            principal = await self.current_principal()
            if principal.roles.isdisjoint(declared):
                LOG.info(
                    "authorization failed: %r has roles %s, %s needs one of %s",
                    principal.subject,
                    sorted(principal.roles),
                    method.__qualname__,
                    list(declared),
                )
                raise Forbidden(AUTHORIZATION_FAILED)
            if not principal.may_access_scan(kwargs.get("scan_id")):
                LOG.info(
                    "authorization failed: %r is limited to scan %s, %s was called for %r",
                    principal.subject,
                    principal.scan_id,
                    method.__qualname__,
                    kwargs.get("scan_id"),
                )
                raise Forbidden(AUTHORIZATION_FAILED)
            return await method(self, *args, **kwargs)

        setattr(wrapper, ROLES_ATTR, declared)
        return wrapper

    return decorate


def public(method: Callable[_P, Coroutine[Any, Any, _R]]) -> Callable[_P, Coroutine[Any, Any, _R]]:
    """Declare a handler method open to anyone, without a token (health, the OpenAPI document): an
    explicit declaration, so that a forgotten `@requires` still shows as undeclared."""
    if not inspect.iscoroutinefunction(method):
        raise TypeError(f"@public decorates async handler methods; {method!r} is not one")
    setattr(method, ROLES_ATTR, ())
    return method


def declared_roles(method: object) -> tuple[Role, ...] | None:
    """The roles `@requires` declared on `method`, or None if it has none."""
    roles = getattr(method, ROLES_ATTR, None)
    return roles if isinstance(roles, tuple) else None


def handler_roles(handler_class: type) -> dict[str, tuple[Role, ...]]:
    """HTTP method (upper case) -> declared roles, for each method of `handler_class` that declares some."""
    found: dict[str, tuple[Role, ...]] = {}
    for name in HTTP_METHODS:
        roles = declared_roles(getattr(handler_class, name, None))
        if roles is not None:
            found[name.upper()] = roles
    return found


def undeclared_methods(handler_class: type) -> list[str]:
    """HTTP methods `handler_class` implements without `@requires`, i.e. open to anyone (for route tests)."""
    return [
        name.upper()
        for name in HTTP_METHODS
        if getattr(handler_class, name, None) is not getattr(tornado.web.RequestHandler, name, None)
        and declared_roles(getattr(handler_class, name)) is None
    ]
