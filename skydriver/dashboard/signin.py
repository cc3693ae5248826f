"""How people sign in to the dashboard, in each deployment.

- **One machine (`SKYDRIVER_AUTH_MODE=local`)**: `skydriver dashboard [--read-only]` signs a sign-in code with
  the local key (`LocalKeyAuthenticator.issue_signin_code`: its own audience, so it is no bearer token; valid
  `SKYDRIVER_AUTH_SIGNIN_CODE_TTL_S`) and prints a link `<url>/dashboard/signin#code=<code>`. The code is in
  the fragment, which browsers never send to a server, so it stays out of access logs and `Referer`
  headers. The sign-in page posts it to `POST /dashboard/session`, which verifies it, records its id (a
  second use is refused) and sets the session cookie.
- **Production (`SKYDRIVER_AUTH_MODE=openid`)**: the authorization-code flow with PKCE (RFC 7636, S256)
  against the provider at `SKYDRIVER_AUTH_OPENID_URL`. `GET /dashboard/signin` stores a random `state` with
  the PKCE verifier (10 minutes, once), sets a short-lived cookie holding the state (so that only this
  browser can finish the sign-in it started) and redirects to the provider's `authorization_endpoint`. The
  provider sends the browser back to `/dashboard/signin/callback?code&state`; SkyDriver checks the state
  against the cookie and its record, exchanges the code (with the verifier) at the `token_endpoint`, and
  verifies the access token with the same authenticator as every bearer token: roles come from its claims
  exactly as for the API.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from ..auth import Authenticator, LocalKeyAuthenticator, Principal

LOG = logging.getLogger(__name__)

#: an OpenID sign-in must come back from the provider within this
OPENID_SIGNIN_TTL_S = 600.0
#: the cookie binding an OpenID sign-in to the browser that started it
STATE_COOKIE = "skydriver_signin_state"
CALLBACK_PATH = "/dashboard/signin/callback"


class SignInError(Exception):
    """A sign-in that cannot go on; the message is shown to the person signing in."""


@dataclass
class LocalSignIn:
    """One machine: one-time codes signed by the local key."""

    issuer: LocalKeyAuthenticator
    kind = "local"

    def verify(self, code: str) -> tuple[Principal, str, float]:
        return self.issuer.verify_signin_code(code)


def pkce_pair() -> tuple[str, str]:
    """(verifier, S256 challenge) as RFC 7636 §4.1-4.2: 43 characters of the unreserved alphabet."""
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


class OpenIDSignIn:
    """Production: the authorization-code flow with PKCE against the configured provider."""

    kind = "openid"

    def __init__(
        self,
        provider_url: str,
        authenticator: Authenticator,
        *,
        client_id: str,
        client_secret: str,
        scopes: str,
        redirect_uri: str,
        timeout_s: float,
    ) -> None:
        self.provider_url = provider_url.rstrip("/")
        self.authenticator = authenticator
        self.client_id = client_id
        self.client_secret = client_secret
        self.scopes = scopes
        self.redirect_uri = redirect_uri
        self.timeout_s = timeout_s
        self._endpoints: tuple[float, str, str] | None = None
        self._lock = asyncio.Lock()

    async def endpoints(self) -> tuple[str, str]:
        """(authorization_endpoint, token_endpoint) from the provider's discovery document (cached an
        hour)."""
        async with self._lock:
            if self._endpoints is None or time.monotonic() - self._endpoints[0] > 3600:
                url = f"{self.provider_url}/.well-known/openid-configuration"
                try:
                    async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                        resp = await client.get(url)
                        resp.raise_for_status()
                        doc = resp.json()
                except (httpx.HTTPError, ValueError) as e:
                    LOG.warning("OpenID discovery at %s failed: %s", url, e)
                    raise SignInError(
                        "the sign-in provider cannot be reached; try again in a minute"
                    ) from e
                authorize, token = doc.get("authorization_endpoint"), doc.get("token_endpoint")
                if not (isinstance(authorize, str) and isinstance(token, str)):
                    raise SignInError("the sign-in provider's discovery document is incomplete")
                self._endpoints = (time.monotonic(), authorize, token)
            return self._endpoints[1], self._endpoints[2]

    async def authorize_url(self, state: str, challenge: str) -> str:
        authorize, _ = await self.endpoints()
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": self.redirect_uri,
                "scope": self.scopes,
                "state": state,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        return f"{authorize}{'&' if '?' in authorize else '?'}{query}"

    async def exchange(self, code: str, verifier: str) -> Principal:
        """The caller behind an authorization code: its access token, verified like any bearer token."""
        _, token_url = await self.endpoints()
        form: dict[str, Any] = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "client_id": self.client_id,
            "code_verifier": verifier,
        }
        if self.client_secret:
            form["client_secret"] = self.client_secret
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                resp = await client.post(token_url, data=form)
            answer = resp.json() if resp.status_code == 200 else {}
        except (httpx.HTTPError, ValueError) as e:
            LOG.warning("OpenID token exchange failed: %s", e)
            raise SignInError("the sign-in provider cannot be reached; try again") from e
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str):
            LOG.info("OpenID token exchange refused: HTTP %d", resp.status_code)
            raise SignInError("the sign-in provider refused the sign-in; start again")
        return await self.authenticator.authenticate(f"Bearer {token}")


SignIn = LocalSignIn | OpenIDSignIn


def signin_link(base_url: str, code: str) -> str:
    """The link `skydriver dashboard` prints: the code in the fragment (never sent to a server)."""
    return f"{base_url.rstrip('/')}/dashboard/signin#code={quote(code)}"
