"""Roles, the verified caller (`Principal`), the bearer header and the claims a token must carry; shared by
both authenticators."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from skyscan_contract.errors import Forbidden

LOG = logging.getLogger(__name__)

AUTHENTICATION_FAILED = "authentication failed"
AUTHORIZATION_FAILED = "authorization failed"


class DenialReason(StrEnum):
    """Why a call was refused, said in the 403's message after its prefix ("authentication failed: expired
    token"): a fixed vocabulary, so that the message tells the caller what to fix and never echoes a token,
    a key or the verifier's text (those go to the log only)."""

    NO_TOKEN = "no token"
    MALFORMED = "malformed token"
    BAD_SIGNATURE = "bad signature"
    EXPIRED = "expired token"
    NOT_YET_VALID = "token not yet valid"
    WRONG_AUDIENCE = "token for another service (audience)"
    WRONG_ISSUER = "token from another issuer"
    UNKNOWN_KEY = "unknown signing key"
    WRONG_ROLE = "wrong role"
    WRONG_SCAN = "wrong scan"
    SCOPED_TOKEN = "a token limited to one scan cannot do this"
    INSTANCE_ENDED = "the scan instance of this token has ended"


def authentication_failed(reason: DenialReason) -> Forbidden:
    return Forbidden(f"{AUTHENTICATION_FAILED}: {reason}")


def authorization_failed(reason: DenialReason) -> Forbidden:
    return Forbidden(f"{AUTHORIZATION_FAILED}: {reason}")


def _jwt_reason(error: Exception) -> DenialReason:
    import jwt

    kinds: tuple[tuple[type[Exception], DenialReason], ...] = (
        (jwt.ExpiredSignatureError, DenialReason.EXPIRED),
        (jwt.ImmatureSignatureError, DenialReason.NOT_YET_VALID),
        (jwt.InvalidSignatureError, DenialReason.BAD_SIGNATURE),
        (jwt.InvalidAudienceError, DenialReason.WRONG_AUDIENCE),
        (jwt.InvalidIssuerError, DenialReason.WRONG_ISSUER),
    )
    return next(
        (reason for kind, reason in kinds if isinstance(error, kind)), DenialReason.MALFORMED
    )


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


def _authentication_failed(
    cause: str, token: str | None = None, reason: DenialReason = DenialReason.MALFORMED
) -> Forbidden:
    """Logs the cause (without the token, one bounded line); the caller gets only `reason`."""
    if token:
        cause = cause.replace(token, "<token>")
    LOG.info("authentication failed: %s", " ".join(cause.split())[:300])
    return authentication_failed(reason)


def _jwt_failed(error: Exception, token: str) -> Forbidden:
    return _authentication_failed(_cause(error), token, _jwt_reason(error))


def _cause(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def bearer_token(authorization_header: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive)."""
    if not authorization_header or not authorization_header.strip():
        raise _authentication_failed("no Authorization header", reason=DenialReason.NO_TOKEN)
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
    # present at all means scoped: a null must not read as "no scope" (audit 2026-12, finding 15)
    if SCAN_ID_CLAIM in claims and not (isinstance(scan_id, str) and scan_id):
        raise _authentication_failed(
            f"claim {SCAN_ID_CLAIM!r} is present but not a non-empty string "
            f"(a {type(scan_id).__name__})"
        )
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
