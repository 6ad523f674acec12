"""Refresh tokens: the OAuth2 form's long-lived credential, sealed: only the token server reads it.

A refresh token is `dgr1.KID.SEALED`: AES-256-GCM, under a secret derived from the signing key
`KID` (so every replica can open it, and none once the key has left the keyring), of the
principal, the service it is good for, its expiry and the login password it was issued against.
Refreshing verifies that login password again, exactly as a login does: a refresh token dies
with the login password it came from (expired, revoked, or its session ended), never later, and
it is good for one service only, as the specification asks. The password never leaves the server
readable: the client holds an opaque, authenticated blob.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dockgate_server.registry.token.keys import Keyring, LoadedKey

__all__ = ["REFRESH_LIFETIME", "RefreshGrant", "open_refresh_token", "seal_refresh_token"]

REFRESH_LIFETIME = 12 * 3600
"""seconds at most; the login password's own expiry (12 hours from its issue) comes first"""
_VERSION = "dgr1"
_LABEL = b"dockgate registry refresh token v1"
_NONCE = 12
_MAX_TOKEN = 16 * 1024
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class RefreshGrant:
    """What a refresh token says, once it opened."""

    principal: str
    service: str
    password: str
    """the login password it was issued against: checked again on every use"""
    expires_at: float
    token_id: str


def seal_refresh_token(
    key: LoadedKey, principal: str, service: str, password: str, expires_at: float
) -> str:
    """A refresh token for `principal` at `service`, good until `expires_at` at most."""
    header = f"{_VERSION}.{key.key_id}"
    payload = json.dumps(
        {
            "sub": principal,
            "aud": service,
            "exp": expires_at,
            "jti": secrets.token_urlsafe(12),
            "pw": password,
        },
        separators=(",", ":"),
    ).encode()
    nonce = os.urandom(_NONCE)
    sealed = AESGCM(key.secret(_LABEL)).encrypt(nonce, payload, header.encode())
    return f"{header}.{_b64url(nonce + sealed)}"


def open_refresh_token(token: str, keyring: Keyring, service: str, now: float) -> RefreshGrant:
    """What `token` grants, when it was sealed by a key of `keyring` for `service` and has not
    expired. Raises `ValueError` (the message names no part of the token)."""
    parts = token.split(".") if len(token) <= _MAX_TOKEN else []
    if len(parts) != 3 or parts[0] != _VERSION:
        raise ValueError("not a dockgate refresh token")
    _, key_id, sealed = parts
    key = keyring.get(key_id)
    if key is None:
        raise ValueError("the refresh token's key is no longer in use")
    try:
        if not _BASE64URL.fullmatch(sealed):
            raise ValueError("not base64url")
        raw = base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
        header = f"{_VERSION}.{key_id}".encode()
        payload = AESGCM(key.secret(_LABEL)).decrypt(raw[:_NONCE], raw[_NONCE:], header)
    except (ValueError, binascii.Error, InvalidTag):
        raise ValueError("the refresh token is not one this server sealed") from None
    fields = json.loads(payload)  # sealed by this server: well formed
    grant = RefreshGrant(
        str(fields["sub"]),
        str(fields["aud"]),
        str(fields["pw"]),
        float(fields["exp"]),
        str(fields["jti"]),
    )
    if grant.service != service:
        raise ValueError(f"the refresh token is for service `{grant.service}`, not `{service}`")
    if now >= grant.expires_at:
        raise ValueError("the refresh token has expired")
    return grant


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
