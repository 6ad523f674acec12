"""Registry login tokens, as ECR's `GetAuthorizationToken` issues them: signed, bound, 12 hours.

A password is `dg1.KEY.PAYLOAD.MAC`: the ID of the key that signed it, a JSON payload (token ID,
principal, session ID, issue and expiry times) in base64url, and an HMAC-SHA256 over both. The
server keeps the keys (in the store); a token signed by a key it does not hold is foreign.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from dockgate_server.credentials.login import Login, LoginRejected, Rejection
from dockgate_server.engine.sessions import CredentialState, format_time
from dockgate_server.store.model import SigningKey

__all__ = [
    "TOKEN_LIFETIME",
    "LoginToken",
    "LoginVerifier",
    "issue_token",
    "new_signing_key",
    "read_token",
]

TOKEN_LIFETIME = 12 * 3600
"""seconds: ECR's authorization tokens are valid for 12 hours"""
_VERSION = "dg1"
_MAX_PASSWORD = 4096
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
"""the unpadded base64url alphabet, and nothing else (no `=`, no `+` or `/`, no whitespace)"""


@dataclass(frozen=True, slots=True)
class LoginToken:
    token_id: str
    principal: str
    session_id: str | None
    """set when the principal is a session Dockgate issued: the token dies with that session"""
    issued_at: float
    expires_at: float
    key_id: str


def new_signing_key(now: float) -> SigningKey:
    return SigningKey(f"k{secrets.token_hex(6)}", secrets.token_bytes(32), now)


def issue_token(
    key: SigningKey, principal: str, session_id: str | None, now: float
) -> tuple[str, LoginToken]:
    """The password for user `AWS`, and what it carries."""
    token = LoginToken(
        secrets.token_hex(12), principal, session_id, now, now + TOKEN_LIFETIME, key.key_id
    )
    payload = _encode(
        json.dumps(
            {
                "t": token.token_id,
                "p": principal,
                "s": session_id,
                "i": token.issued_at,
                "e": token.expires_at,
            },
            separators=(",", ":"),
        ).encode()
    )
    signed = f"{_VERSION}.{key.key_id}.{payload}"
    return f"{signed}.{_encode(_mac(key.secret, signed))}", token


def read_token(password: str, keys: Mapping[str, SigningKey]) -> LoginToken:
    """The token `password` carries, once its signature checks; raises `LoginRejected`."""
    parts = password.split(".") if len(password) <= _MAX_PASSWORD else []
    if len(parts) != 4 or parts[0] != _VERSION:
        raise LoginRejected(Rejection.MALFORMED, "the password is not a dockgate login token")
    _, key_id, payload, mac = parts
    key = keys.get(key_id)
    if key is None:
        raise LoginRejected(Rejection.UNKNOWN_KEY, "the login token was not signed by this server")
    if not _is_base64url(mac):
        raise LoginRejected(Rejection.MALFORMED, "the login token's signature is not base64url")
    # the text is compared, not the bytes it decodes to: a MAC has one spelling, and one with
    # its last character's unused bits changed is a signature that does not match
    expected = _encode(_mac(key.secret, f"{_VERSION}.{key_id}.{payload}"))
    if not hmac.compare_digest(mac.encode(), expected.encode()):
        raise LoginRejected(Rejection.TAMPERED, "the login token's signature does not match")
    try:
        fields = json.loads(_decode(payload))
        return LoginToken(
            str(fields["t"]),
            str(fields["p"]),
            None if fields["s"] is None else str(fields["s"]),
            float(fields["i"]),
            float(fields["e"]),
            key_id,
        )
    except (ValueError, KeyError, TypeError):  # signed by us, so never expected
        raise LoginRejected(
            Rejection.MALFORMED, "the login token's payload is unreadable"
        ) from None


class LoginVerifier:
    """Turns the password of `Authorization: Basic AWS:<password>` back into its principal,
    against the credentials of the current snapshot and the server's clock."""

    def __init__(
        self, credentials: Callable[[], CredentialState], clock: Callable[[], float]
    ) -> None:
        self._credentials = credentials
        self._clock = clock

    def __call__(self, password: str) -> Login:
        state = self._credentials()
        token = read_token(password, state.signing_keys)
        now = self._clock()
        if now >= token.expires_at:
            raise LoginRejected(
                Rejection.EXPIRED,
                f"your authorization token has expired (at {format_time(token.expires_at)})",
            )
        if token.token_id in state.revoked_tokens:
            raise LoginRejected(Rejection.REVOKED, "the login token was revoked")
        expires_at = token.expires_at
        if token.session_id is not None:
            session = state.sessions.get(token.principal)
            if session is None or session.session_id != token.session_id:
                raise LoginRejected(
                    Rejection.REVOKED,
                    f"the session `{token.principal}` of the login token has ended",
                )
            if session.ended == "revoked":
                raise LoginRejected(
                    Rejection.REVOKED, f"the session `{token.principal}` was revoked"
                )
            if session.is_expired(now):
                raise LoginRejected(
                    Rejection.EXPIRED,
                    f"the session `{token.principal}` expired at {format_time(session.expires_at)}",
                )
            expires_at = min(expires_at, session.expires_at)
        return Login(token.principal, expires_at)


def _mac(secret: bytes, signed: str) -> bytes:
    return hmac.new(secret, signed.encode(), hashlib.sha256).digest()


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode(text: str) -> bytes:
    """Strict unpadded base64url: a password has exactly one accepted spelling.

    The standard decoder also takes padding, `+`/`/`, and a last character whose unused low bits
    are set (`...A` and `...B` decode alike); a token whose last character was changed must be
    refused, so the text must be the exact encoding of what it decodes to.
    """
    if not _is_base64url(text):
        raise ValueError("not unpadded base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as problem:
        raise ValueError(str(problem)) from None
    if _encode(raw) != text:
        raise ValueError("not the canonical base64url of its bytes")
    return raw


def _is_base64url(text: str) -> bool:
    """Only the unpadded base64url alphabet, in a length some bytes encode to."""
    return bool(_BASE64URL.fullmatch(text)) and len(text) % 4 != 1
