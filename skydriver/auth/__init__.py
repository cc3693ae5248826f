"""Who is calling, and may they call this route: bearer tokens, roles and the `@requires` decorator.

Two roles, mapped from token claims exactly as the original SkyDriver does (reference §1):

    role     claim                                      must contain
    user     resource_access.skydriver-external.roles  "users"
    system   resource_access.skydriver-internal.roles  "system"

A verified token becomes a `Principal`. A token may also carry `skydriver_scan_id`: it then only opens routes
whose `scan_id` path argument is that scan (a claim that is present but null or not a non-empty string fails
authentication). The launcher gives such scan-scoped system tokens to a scan's server and client manager, so a
leaked one reaches a single scan.

Two authenticators share the `Authenticator` protocol:

- `LocalKeyAuthenticator` (one machine, the default). An Ed25519 key is created once in a key file (mode 0600,
  written atomically) and reused on restart. It verifies the tokens it signs and issues them (`issue_token`).
- `OpenIDAuthenticator` (production). Tokens from an OpenID provider (Keycloak): RS/ES signatures only, `iss`
  exactly the configured provider URL. Its keys are fetched on first use on the event loop, with a timeout,
  cached, and refreshed for an unknown key id at most once per interval (`skydriver.auth.openid`).

Modules: `principal` (roles, `Principal`, the bearer header, the verified-token cache), `local`, `openid`,
`settings` (`AuthSettings`, `build_authenticator`) and `requires` (the decorator). Import from `skydriver.auth`.

Status codes. A missing, malformed, expired or wrongly signed token, or one for another audience, gives
**403 `authentication failed: <reason>`**. A valid token without a required role, or scoped to another scan,
gives **403 `authorization failed: <reason>`**. The reason is one of `DenialReason`'s fixed phrases ("no token",
"bad signature", "expired token", "wrong role", "wrong scan", …) so that a caller knows what to fix. RFC 7235 would answer the first case with 401 and a `WWW-Authenticate` header. We
keep 403 because the original does (rest_tools' handlers) and its clients match the text
"403 Client Error: authentication failed"; JupyterHub's `needs_scope` also answers missing credentials with a
plain 403. The message never contains the token or the verifier's exception text. The cause is logged at INFO,
without the token.

There is no switch that turns auth off (the original does this when `CI=true`). Tests sign real tokens with a test
key.
"""

from .local import KeyFileError, LocalKeyAuthenticator, load_or_create_key
from .openid import OpenIDAuthenticator
from .principal import (
    AUTHENTICATION_FAILED,
    AUTHORIZATION_FAILED,
    DEFAULT_AUDIENCE,
    HTTP_METHODS,
    LOCAL_ISSUER,
    MAX_TOKEN_CHARS,
    ROLE_CLAIMS,
    ROLES_ATTR,
    SCAN_ID_CLAIM,
    Authenticator,
    DenialReason,
    Principal,
    Role,
    TokenIssuer,
    VerifiedTokens,
    authentication_failed,
    authorization_failed,
    bearer_token,
    principal_from_claims,
    roles_from_claims,
)
from .requires import (
    HasPrincipal,
    declared_roles,
    handler_roles,
    public,
    requires,
    undeclared_methods,
)
from .settings import AuthSettings, build_authenticator

__all__ = [
    "AUTHENTICATION_FAILED",
    "AUTHORIZATION_FAILED",
    "DEFAULT_AUDIENCE",
    "HTTP_METHODS",
    "LOCAL_ISSUER",
    "MAX_TOKEN_CHARS",
    "ROLES_ATTR",
    "ROLE_CLAIMS",
    "SCAN_ID_CLAIM",
    "AuthSettings",
    "Authenticator",
    "DenialReason",
    "HasPrincipal",
    "KeyFileError",
    "LocalKeyAuthenticator",
    "OpenIDAuthenticator",
    "Principal",
    "Role",
    "TokenIssuer",
    "VerifiedTokens",
    "authentication_failed",
    "authorization_failed",
    "bearer_token",
    "build_authenticator",
    "declared_roles",
    "handler_roles",
    "load_or_create_key",
    "principal_from_claims",
    "public",
    "requires",
    "roles_from_claims",
    "undeclared_methods",
]
