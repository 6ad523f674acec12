"""Temporary credentials: role sessions, federation tokens and registry login tokens."""

from dockgate_server.credentials.login import Login, LoginRejected, Rejection
from dockgate_server.credentials.sessions import (
    AccessDeniedError,
    AssumeRoleInput,
    CredentialInputError,
    FederationInput,
    assume_role,
    check_login,
    get_federation_token,
)
from dockgate_server.credentials.tokens import (
    TOKEN_LIFETIME,
    LoginToken,
    LoginVerifier,
    issue_token,
    new_signing_key,
    read_token,
)

__all__ = [
    "TOKEN_LIFETIME",
    "AccessDeniedError",
    "AssumeRoleInput",
    "CredentialInputError",
    "FederationInput",
    "Login",
    "LoginRejected",
    "LoginToken",
    "LoginVerifier",
    "Rejection",
    "assume_role",
    "check_login",
    "get_federation_token",
    "issue_token",
    "new_signing_key",
    "read_token",
]
