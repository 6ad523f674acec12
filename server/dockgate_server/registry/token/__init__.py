"""The registry's token server, as pure parts a front door calls: scopes, grants, keys, JWTs,
refresh tokens, and `issue_token` (one token request → its HTTP answer)."""

from dockgate_server.registry.token.grants import (
    CATALOG_ACTION,
    SCOPE_ACTIONS,
    Access,
    grant_access,
)
from dockgate_server.registry.token.issue import (
    DEFAULT_TTL,
    TokenAnswer,
    TokenConfig,
    TokenRequest,
    issue_token,
)
from dockgate_server.registry.token.jwt import TokenInvalid, sign_jwt, verify_access_token
from dockgate_server.registry.token.keys import (
    ALGORITHMS,
    KEY_GRACE,
    Keyring,
    KeyringCache,
    libtrust_key_id,
    load_keyring,
    new_token_key,
)
from dockgate_server.registry.token.scope import RequestedScopes, Scope, parse_scopes

__all__ = [
    "ALGORITHMS",
    "CATALOG_ACTION",
    "DEFAULT_TTL",
    "KEY_GRACE",
    "SCOPE_ACTIONS",
    "Access",
    "Keyring",
    "KeyringCache",
    "RequestedScopes",
    "Scope",
    "TokenAnswer",
    "TokenConfig",
    "TokenInvalid",
    "TokenRequest",
    "grant_access",
    "issue_token",
    "libtrust_key_id",
    "load_keyring",
    "new_token_key",
    "parse_scopes",
    "sign_jwt",
    "verify_access_token",
]
