"""Refresh tokens: sealed for one principal and one service, bounded in time, opened only by a
key of the keyring, and never readable by the client."""

from __future__ import annotations

import base64

import pytest

from dockgate_server.registry.token.keys import load_keyring
from dockgate_server.registry.token.refresh import open_refresh_token, seal_refresh_token
from tests.server.registry.token.keys_for_tests import NOW, keyring, loaded, stored_key

PRINCIPAL = "arn:aws:iam::111122223333:user/alice"
PASSWORD = "dg1.kid.password-payload.mac"


def sealed(service: str = "registry", expires_at: float = NOW + 3600) -> str:
    return seal_refresh_token(loaded(), PRINCIPAL, service, PASSWORD, expires_at)


def test_a_refresh_token_opens_to_what_it_was_sealed_with() -> None:
    grant = open_refresh_token(sealed(), keyring(), "registry", NOW)
    assert (grant.principal, grant.service, grant.password) == (PRINCIPAL, "registry", PASSWORD)
    assert grant.expires_at == NOW + 3600


def test_the_password_cannot_be_read_from_the_token() -> None:
    token = sealed()
    blob = token.rsplit(".", 1)[1]
    raw = base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))
    assert PASSWORD not in token and PASSWORD.encode() not in raw and b"alice" not in raw


def test_two_tokens_for_the_same_grant_differ() -> None:
    assert sealed() != sealed()


def test_a_refresh_token_is_good_for_its_service_only() -> None:
    with pytest.raises(ValueError, match="for service `registry`, not `other`"):
        open_refresh_token(sealed(), keyring(), "other", NOW)


def test_an_expired_refresh_token_is_refused() -> None:
    token = sealed(expires_at=NOW + 10)
    assert open_refresh_token(token, keyring(), "registry", NOW + 9)
    with pytest.raises(ValueError, match="expired"):
        open_refresh_token(token, keyring(), "registry", NOW + 10)


def test_a_key_gone_from_the_keyring_opens_nothing() -> None:
    other = load_keyring([stored_key("ES256", NOW - 5)], NOW)
    with pytest.raises(ValueError, match="no longer in use"):
        open_refresh_token(sealed(), other, "registry", NOW)


@pytest.mark.parametrize("change", ["flip", "truncate", "other-kid", "version"])
def test_a_changed_refresh_token_is_refused(change: str) -> None:
    token = sealed()
    version, kid, blob = token.split(".")
    if change == "flip":
        blob = blob[:10] + ("A" if blob[10] != "A" else "B") + blob[11:]
    elif change == "truncate":
        blob = blob[:-4]
    elif change == "other-kid":
        kid = loaded("RS256").key_id  # the blob is bound to the key that sealed it
    else:
        version = "dgr2"
    both = keyring(stored_key("ES256"), stored_key("RS256"))
    with pytest.raises(
        ValueError, match=r"not a dockgate refresh token|not one this server sealed"
    ):
        open_refresh_token(f"{version}.{kid}.{blob}", both, "registry", NOW)
