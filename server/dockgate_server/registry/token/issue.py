"""One token request (`GET /token`, or the OAuth2 form's `POST /token`) → the HTTP answer.

Pure apart from the callables it is handed (verify a login, decide, list repositories, the
keyring, the clock): a front door moves bytes in and out and nothing else.

- `GET /token?service=S&scope=…&offline_token=true` with `Authorization: Basic AWS:<password>`;
- `POST /token`, form `grant_type=password&username=AWS&password=…&service=S&scope=…`
  (`access_type=offline` for a refresh token), or `grant_type=refresh_token&refresh_token=…`.

No credentials is a 401 with a Basic challenge: Dockgate has no anonymous principal to decide
for (ECR serves no anonymous pulls either), so an anonymous token could only ever be empty and
would hide the reason a client then fails. Wrong or expired credentials: 401. A decision that
cannot be made: 503, and no token; any other failure: 500, and no token (never a grant).
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from dockgate_server.credentials.login import Login, LoginRejected, Rejection
from dockgate_server.engine.sessions import format_time
from dockgate_server.registry.context import ClientFacts, ContextError, Network, client_context
from dockgate_server.registry.gate import Decide, DecisionUnavailable, ListRepositories
from dockgate_server.registry.routes import Registry
from dockgate_server.registry.token.grants import Access, grant_access
from dockgate_server.registry.token.jwt import access_claims, sign_jwt
from dockgate_server.registry.token.keys import Keyring
from dockgate_server.registry.token.refresh import (
    REFRESH_LIFETIME,
    RefreshGrant,
    open_refresh_token,
    seal_refresh_token,
)
from dockgate_server.registry.token.scope import parse_scopes

__all__ = [
    "DEFAULT_ISSUER",
    "DEFAULT_TTL",
    "MAX_SCOPES",
    "MIN_TTL",
    "TOKEN_PATH",
    "TokenAnswer",
    "TokenConfig",
    "TokenRequest",
    "VerifyLogin",
    "issue_token",
]

log = logging.getLogger("dockgate.token")

VerifyLogin = Callable[[str], Login]
"""the password of `AWS:<password>` → the login it verifies as; raises `LoginRejected`"""
TOKEN_PATH = "/token"
"""the realm's path on the token server: `http://HOST:PORT/token`"""
DEFAULT_ISSUER = "dockgate"
"""the registry's `auth.token.issuer` unless told otherwise: every token's `iss`"""
DEFAULT_TTL = 300
"""seconds: a decision frozen in a token outlives any policy change made meanwhile"""
MIN_TTL = 60
"""the specification: a token should never be returned with less than 60 seconds to live"""
MAX_SCOPES = 100
"""scopes in one request at most: each costs up to eight decisions"""
_MAX_FIELDS = 2 * MAX_SCOPES
_FORM = "application/x-www-form-urlencoded"
_JSON = ("Content-Type", "application/json")
_NO_STORE = (("Cache-Control", "no-store"), ("Pragma", "no-cache"))
_CODES = {
    401: "UNAUTHORIZED",
    403: "DENIED",
    405: "UNSUPPORTED",
    500: "UNKNOWN",
    503: "UNAVAILABLE",
}
"""the registry's error codes, for the errors of a `GET`"""
_REJECTIONS = {
    Rejection.EXPIRED: "your authorization token has expired",
    Rejection.REVOKED: "your authorization token has been revoked",
}


@dataclass(frozen=True, slots=True)
class TokenConfig:
    service: str
    """the registry's `auth.token.service`: every token's `aud`"""
    issuer: str
    """the registry's `auth.token.issuer`: every token's `iss`"""
    registry: Registry
    """the account and Region whose repositories the registry's names are"""
    ttl: int = DEFAULT_TTL
    refresh_ttl: int = REFRESH_LIFETIME
    trusted_proxies: tuple[Network, ...] = ()
    """only a peer in these may say who the client is (X-Forwarded-For)"""
    secure_transport: bool = False
    """what `aws:SecureTransport` says when the front door does not tell"""

    def __post_init__(self) -> None:
        if not self.service or not all(" " <= c <= "~" and c != '"' for c in self.service):
            raise ValueError(f'token service `{self.service}`: printable ASCII without `"`')
        if not self.issuer:
            raise ValueError("token issuer is empty")
        if self.ttl < MIN_TTL:
            raise ValueError(f"token ttl `{self.ttl}`: at least {MIN_TTL} seconds")
        if self.refresh_ttl < self.ttl:
            raise ValueError(f"refresh token ttl `{self.refresh_ttl}`: at least the token ttl")


@dataclass(frozen=True, slots=True)
class TokenRequest:
    method: str
    query: str
    """the raw query string, without `?`"""
    client: ClientFacts
    authorization: str | None = None
    content_type: str | None = None
    body: bytes = b""
    """the form of a POST"""


@dataclass(frozen=True, slots=True)
class TokenAnswer:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    principal: str | None = None
    """who asked, once known (for the access log)"""
    granted: tuple[Access, ...] = ()
    ignored_scopes: tuple[str, ...] = ()
    """scopes that did not parse, for the log"""


class _Refusal(Exception):  # noqa: N818 (control flow: an answer decided early)
    def __init__(self, status: int, error: str, message: str, **more: Any) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.more = status, error, message, more


def issue_token(
    request: TokenRequest,
    config: TokenConfig,
    *,
    verify_login: VerifyLogin,
    decide: Decide,
    repositories: ListRepositories,
    keys: Callable[[], Keyring],
    clock: Callable[[], float] = time.time,
) -> TokenAnswer:
    """The answer to one token request. Never raises: a failure is an answer without a token."""
    oauth = request.method.upper() == "POST"
    try:
        return _issue(
            request,
            config,
            clock(),
            oauth,
            verify_login=verify_login,
            decide=decide,
            repositories=repositories,
            keys=keys,
        )
    except _Refusal as refusal:
        return _refused(refusal, oauth, config)
    except DecisionUnavailable as problem:
        return _refused(_Refusal(503, "temporarily_unavailable", str(problem)), oauth, config)
    except Exception:
        # fail closed; the message names no part of the request (it holds credentials)
        log.exception("token request failed: no token is issued")
        failure = _Refusal(500, "server_error", "the token could not be issued")
        return _refused(failure, oauth, config)


def _issue(
    request: TokenRequest,
    config: TokenConfig,
    now: float,
    oauth: bool,
    *,
    verify_login: VerifyLogin,
    decide: Decide,
    repositories: ListRepositories,
    keys: Callable[[], Keyring],
) -> TokenAnswer:
    if request.method.upper() not in ("GET", "POST"):
        raise _Refusal(405, "invalid_request", f"method `{request.method[:16]}` is not allowed")
    params = _parameters(request, oauth)
    service = _single(params, "service")
    if service is None and oauth:
        raise _Refusal(400, "invalid_request", "`service` is required")
    if service is not None and service != config.service:
        raise _Refusal(400, "invalid_request", f"service `{service[:200]}` is not served here")
    requested = parse_scopes(params.get("scope", []))
    if len(requested.scopes) > MAX_SCOPES:
        raise _Refusal(400, "invalid_scope", f"more than {MAX_SCOPES} scopes")
    keyring = keys()
    signer = keyring.signing
    if signer is None:
        raise _Refusal(503, "temporarily_unavailable", "no token-signing key has been made")
    password, refresh, offline = _credentials(
        request, params, config, keyring, now=now, oauth=oauth
    )
    login = _login(verify_login, password, now)
    if refresh is not None and refresh.principal != login.principal:
        raise _Refusal(401, "invalid_grant", "the refresh token is not this principal's")
    try:
        context = client_context(
            request.client,
            config.registry,
            now,
            trusted_proxies=config.trusted_proxies,
            secure_transport=config.secure_transport,
        )
    except ContextError as problem:
        raise _Refusal(403, "access_denied", str(problem), principal=login.principal) from None
    granted = grant_access(
        login.principal,
        requested.scopes,
        config.registry,
        context,
        decide=decide,
        repositories=repositories,
    )
    # never past the login's own expiry: IAM would not accept its credentials then either
    expires_at = min(now + config.ttl, login.expires_at)
    claims = access_claims(
        issuer=config.issuer,
        subject=login.principal,
        audience=config.service,
        access=granted,
        now=now,
        expires_at=expires_at,
    )
    token = sign_jwt(claims, signer)
    body: dict[str, Any] = {
        "token": token,
        "access_token": token,
        "expires_in": int(expires_at) - int(now),
        "issued_at": format_time(now),
    }
    if oauth:
        body["scope"] = " ".join(s for entry in granted for s in entry.scopes())
    if refresh is not None:
        # the specification: a refresh grant answers with the same refresh token
        body["refresh_token"] = params["refresh_token"][0]
    elif offline:
        until = min(now + config.refresh_ttl, login.expires_at)
        body["refresh_token"] = seal_refresh_token(
            signer, login.principal, config.service, password, until
        )
    headers = (_JSON, *_NO_STORE)
    return TokenAnswer(
        200,
        headers,
        json.dumps(body).encode(),
        login.principal,
        granted,
        requested.ignored,
    )


# -- the steps --------------------------------------------------------------------------------


def _parameters(request: TokenRequest, oauth: bool) -> dict[str, list[str]]:
    text = request.query
    if oauth:
        media = (request.content_type or "").split(";")[0].strip().lower()
        if media != _FORM:
            raise _Refusal(400, "invalid_request", f"the form must be `{_FORM}`")
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise _Refusal(400, "invalid_request", "the form is not UTF-8") from None
    try:
        return parse_qs(text, keep_blank_values=True, max_num_fields=_MAX_FIELDS)
    except ValueError:
        raise _Refusal(400, "invalid_request", f"more than {_MAX_FIELDS} parameters") from None


def _single(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise _Refusal(400, "invalid_request", f"`{name}` is given more than once")
    return values[0]


def _credentials(
    request: TokenRequest,
    params: Mapping[str, Sequence[str]],
    config: TokenConfig,
    keyring: Keyring,
    *,
    now: float,
    oauth: bool,
) -> tuple[str, RefreshGrant | None, bool]:
    """(login password, the refresh grant used if any, whether a refresh token is wanted)."""
    if not oauth:
        offline = (_single(params, "offline_token") or "").lower() == "true"
        return _basic_password(request.authorization), None, offline
    grant_type = _single(params, "grant_type")
    if grant_type == "password":
        user = _single(params, "username")
        password = _single(params, "password")
        if user is None or password is None:
            raise _Refusal(401, "invalid_grant", "`username` and `password` are required")
        if user != "AWS":
            raise _Refusal(401, "invalid_grant", "the user name must be `AWS`")
        return password, None, _single(params, "access_type") == "offline"
    if grant_type == "refresh_token":
        token = _single(params, "refresh_token")
        if not token:
            raise _Refusal(400, "invalid_request", "`refresh_token` is required")
        try:
            grant = open_refresh_token(token, keyring, config.service, now)
        except ValueError as problem:
            raise _Refusal(401, "invalid_grant", str(problem)) from None
        return grant.password, grant, False
    if grant_type is None:
        raise _Refusal(400, "invalid_request", "`grant_type` is required")
    raise _Refusal(400, "unsupported_grant_type", f"grant type `{grant_type[:64]}` is not served")


def _basic_password(authorization: str | None) -> str:
    if not authorization:
        raise _Refusal(401, "invalid_client", "authentication required")
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        raise _Refusal(401, "invalid_client", "basic credentials are required")
    try:
        if not encoded.strip():
            raise ValueError("no credentials")
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except ValueError:  # binascii.Error and UnicodeDecodeError both are
        raise _Refusal(401, "invalid_client", "malformed basic credentials") from None
    user, colon, password = decoded.partition(":")
    if not colon or user != "AWS":
        raise _Refusal(401, "invalid_client", "the user name must be `AWS`")
    if not password:
        raise _Refusal(401, "invalid_client", "no authorization token")
    return password


def _login(verify_login: VerifyLogin, password: str, now: float) -> Login:
    try:
        login = verify_login(password)
    except LoginRejected as rejected:
        message = _REJECTIONS.get(rejected.rejection, "your authorization token is invalid")
        raise _Refusal(401, "invalid_grant", message, rejection=str(rejected.rejection)) from None
    if login.expires_at <= now:  # the verifier checks too; a login is never good past this
        raise _Refusal(401, "invalid_grant", _REJECTIONS[Rejection.EXPIRED], rejection="expired")
    return login


# -- answers ----------------------------------------------------------------------------------


def _refused(refusal: _Refusal, oauth: bool, config: TokenConfig) -> TokenAnswer:
    """An error answer: RFC 6749's error object for the OAuth2 form, the registry's error list
    for `GET`; a 401 challenges for Basic credentials."""
    headers: list[tuple[str, str]] = [_JSON, *_NO_STORE]
    if refusal.status == 401:
        headers.insert(0, ("WWW-Authenticate", f'Basic realm="{config.service}"'))
    if refusal.status == 405:
        headers.append(("Allow", "GET, POST"))
    detail = {k: v for k, v in refusal.more.items() if k != "principal"} or None
    if oauth:
        body: dict[str, Any] = {"error": refusal.error, "error_description": refusal.message}
    else:
        code = _CODES.get(refusal.status, "INVALID_REQUEST")
        body = {"errors": [{"code": code, "message": refusal.message, "detail": detail}]}
    principal = refusal.more.get("principal")
    return TokenAnswer(refusal.status, tuple(headers), json.dumps(body).encode(), principal)
