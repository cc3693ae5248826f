"""One-machine mode: an Ed25519 key in a key file signs and verifies SkyDriver's own tokens."""

from __future__ import annotations

import hashlib
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any, Self

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .principal import (
    DEFAULT_AUDIENCE,
    LOCAL_ISSUER,
    ROLE_CLAIMS,
    SCAN_ID_CLAIM,
    Principal,
    Role,
    VerifiedTokens,
    _jwt_failed,
    bearer_token,
    principal_from_claims,
)

LOG = logging.getLogger(__name__)


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
            raise _jwt_failed(e, token) from e
        principal = principal_from_claims(claims)
        self._verified.put(token, principal)
        return principal
