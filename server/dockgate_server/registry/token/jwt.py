"""Registry bearer tokens: JSON Web Tokens signed as docker-registry verifies them, and read back.

A token is a compact JWS whose header names its key twice: `kid` in libtrust's format (matched
against the registry's `rootcertbundle`) and `x5c` (the key's self-signed certificate, which
takes precedence in docker-registry 2.8). Its claims are `iss`, `sub` (the principal's ARN), `aud`
(a string: the service; 2.8 fails on a list), `exp`, `nbf`, `iat`, `jti` and `access`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from dockgate_server.registry.token.grants import Access
from dockgate_server.registry.token.keys import Keyring, LoadedKey

__all__ = [
    "TokenInvalid",
    "access_claims",
    "read_jwt",
    "sign_jwt",
    "verify_access_token",
]

_MAX_TOKEN = 64 * 1024
"""characters of a token at most: a scope list of thousands of entries is far below"""
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


class TokenInvalid(ValueError):  # noqa: N818 (a verdict on the token, as the registry words it)
    """A token that is malformed, not signed by a key of the keyring, or not valid now."""


def access_claims(
    *,
    issuer: str,
    subject: str,
    audience: str,
    access: Sequence[Access],
    now: float,
    expires_at: float,
) -> dict[str, Any]:
    """The claims of an access token; times in whole seconds, `jti` random."""
    return {
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "exp": int(expires_at),
        "nbf": int(now),
        "iat": int(now),
        "jti": secrets.token_urlsafe(18),
        "access": [entry.claim() for entry in access],
    }


def sign_jwt(claims: Mapping[str, Any], key: LoadedKey) -> str:
    header = {
        "typ": "JWT",
        "alg": key.algorithm,
        "kid": key.key_id,
        # standard base64, not base64url (RFC 7515 section 4.1.6)
        "x5c": [base64.b64encode(key.certificate_der).decode()],
    }
    signing_input = f"{_encode_json(header)}.{_encode_json(claims)}"
    return f"{signing_input}.{_b64url(key.sign(signing_input.encode()))}"


def read_jwt(token: str, keyring: Keyring) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of `token` once its signature checks against a key of `keyring`
    (found by its `x5c` certificate, else by `kid`). Raises `TokenInvalid`."""
    parts = token.split(".") if len(token) <= _MAX_TOKEN else []
    if len(parts) != 3:
        raise TokenInvalid("not a compact JWS")
    header = _decode_json(parts[0], "header")
    claims = _decode_json(parts[1], "claims")
    key = _key_of(header, keyring)
    if header.get("alg") != key.algorithm:
        raise TokenInvalid(f"algorithm `{header.get('alg')}` is not the key's ({key.algorithm})")
    signature = _decode(parts[2], "signature")
    if not key.verifies(signature, f"{parts[0]}.{parts[1]}".encode()):
        raise TokenInvalid("the signature does not match")
    return header, claims


def verify_access_token(
    token: str,
    keyring: Keyring,
    *,
    issuer: str,
    audience: str,
    now: float,
    leeway: float = 0.0,
) -> dict[str, Any]:
    """The claims of an access token that is valid at `now` for `audience`, as a registry
    would check it (`leeway`: docker-registry allows 60 seconds). Raises `TokenInvalid`."""
    _, claims = read_jwt(token, keyring)
    if claims.get("iss") != issuer:
        raise TokenInvalid(f"issuer `{claims.get('iss')}` is not `{issuer}`")
    if claims.get("aud") != audience:
        raise TokenInvalid(f"audience `{claims.get('aud')}` is not `{audience}`")
    expires, not_before = claims.get("exp"), claims.get("nbf")
    if not isinstance(expires, int) or not isinstance(not_before, int):
        raise TokenInvalid("`exp` and `nbf` must be whole seconds")
    if now > expires + leeway:
        raise TokenInvalid("the token has expired")
    if now < not_before - leeway:
        raise TokenInvalid("the token is not valid yet")
    if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("access"), list):
        raise TokenInvalid("`sub` and `access` are required")
    return claims


def _key_of(header: Mapping[str, Any], keyring: Keyring) -> LoadedKey:
    chain = header.get("x5c")
    if chain is not None:
        if not isinstance(chain, list) or not chain or not isinstance(chain[0], str):
            raise TokenInvalid("`x5c` is not a list of certificates")
        try:
            leaf = base64.b64decode(chain[0], validate=True)
        except (binascii.Error, ValueError):
            raise TokenInvalid("`x5c` is not base64") from None
        found = keyring.by_certificate(leaf)
        if found is None:
            raise TokenInvalid("the `x5c` certificate is not one of the signing keys")
        return found
    key_id = header.get("kid")
    found = keyring.get(key_id) if isinstance(key_id, str) else None
    if found is None:
        raise TokenInvalid("the token was not signed by a known key")
    return found


def _encode_json(value: Mapping[str, Any]) -> str:
    return _b64url(json.dumps(value, separators=(",", ":")).encode())


def _decode_json(text: str, what: str) -> dict[str, Any]:
    raw = _decode(text, what)
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise TokenInvalid(f"the {what} is not JSON") from None
    if not isinstance(value, dict):
        raise TokenInvalid(f"the {what} is not a JSON object")
    return value


def _decode(text: str, what: str) -> bytes:
    if not _BASE64URL.fullmatch(text) or len(text) % 4 == 1:
        raise TokenInvalid(f"the {what} is not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
