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
    key_file: Path | None = Field(
        None,
        description="local mode: Ed25519 signing key, created (0600) on first start and reused; "
        "default <SKYDRIVER_STATE_DIR>/auth/signing-key.pem",
    )
    openid_url: str = Field(
        "",
        description="openid mode: the provider (issuer) URL, e.g. a Keycloak realm; a token's 'iss' must "
        "equal it exactly",
    )
    openid_fetch_timeout_s: float = Field(
        5.0,
        gt=0,
        description="openid mode: seconds the provider may take to answer discovery and its keys (JWKS) "
        "together; a token whose key is not cached is refused after at most this long",
    )
    openid_keys_lifespan_s: float = Field(
        600.0,
        gt=0,
        description="openid mode: seconds the provider's keys are used before they are fetched again (in "
        "the background; the old keys keep working while the provider is unreachable)",
    )
    openid_refresh_min_interval_s: float = Field(
        10.0,
        gt=0,
        description="openid mode: the keys are fetched at most once per this many seconds, however many "
        "tokens name an unknown key id ('kid'); such tokens are refused in between",
    )
    openid_unknown_kid_ttl_s: float = Field(
        60.0,
        ge=0,
        description="openid mode: seconds a key id missing from the provider's keys is refused without "
        "fetching them again",
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
        if self.mode == "openid" and not self.openid_url.startswith(("https://", "http://")):
            raise ValueError(
                "SKYDRIVER_AUTH_OPENID_URL must be the provider's http(s) URL when SKYDRIVER_AUTH_MODE=openid "
                f"(e.g. https://keycloak.icecube.wisc.edu/auth/realms/IceCube), got {self.openid_url!r}"
            )
        return self


def key_file(settings: AuthSettings, state_dir: Path) -> Path:
    """The local signing key's file: the configured one, else the one in SkyDriver's state directory."""
    return settings.key_file or state_dir / "auth" / "signing-key.pem"


def build_authenticator(settings: AuthSettings, state_dir: Path) -> Authenticator:
    """The authenticator of `settings.mode`. Local mode reads (or creates) the key file now."""
    if settings.mode == "openid":
        return OpenIDAuthenticator(
            settings.openid_url,
            audience=settings.audience,
            fetch_timeout_s=settings.openid_fetch_timeout_s,
            keys_lifespan_s=settings.openid_keys_lifespan_s,
            refresh_min_interval_s=settings.openid_refresh_min_interval_s,
            unknown_kid_ttl_s=settings.openid_unknown_kid_ttl_s,
        )
    return LocalKeyAuthenticator.from_key_file(
        key_file(settings, state_dir), audience=settings.audience
    )
