"""Auth settings (`SKYDRIVER_AUTH_*`) and the authenticator they select."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .local import LocalKeyAuthenticator
from .openid import OpenIDAuthenticator
from .principal import (
    DEFAULT_AUDIENCE,
    Authenticator,
)


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
