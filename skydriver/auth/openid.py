"""Production mode: tokens of an OpenID provider (Keycloak)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Protocol, cast

import jwt
from rest_tools.utils.auth import BadJwtKey, OpenIDAuth

from .principal import (
    DEFAULT_AUDIENCE,
    Principal,
    VerifiedTokens,
    _authentication_failed,
    _cause,
    bearer_token,
    principal_from_claims,
)

LOG = logging.getLogger(__name__)


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
