"""Access tokens: the header docker-registry needs (`alg`, `kid`, `x5c`), the claims, and the
checks of the verifier (signature, key, issuer, audience, times)."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import pytest

from dockgate_server.registry.token.grants import Access
from dockgate_server.registry.token.jwt import (
    TokenInvalid,
    access_claims,
    read_jwt,
    sign_jwt,
    verify_access_token,
)
from dockgate_server.registry.token.keys import load_keyring
from tests.server.registry.token.keys_for_tests import NOW, keyring, loaded, stored_key

ACCESS = (Access("repository", "team-a/app", ("pull", "push")),)
SUBJECT = "arn:aws:iam::111122223333:user/alice"


def claims(**more: Any) -> dict[str, Any]:
    made = access_claims(
        issuer="dockgate",
        subject=SUBJECT,
        audience="registry",
        access=ACCESS,
        now=NOW,
        expires_at=NOW + 300,
    )
    return made | more


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")
    return _unb64(header), _unb64(payload)


def verify(token: str, **more: Any) -> dict[str, Any]:
    options: dict[str, Any] = {"issuer": "dockgate", "audience": "registry", "now": NOW} | more
    return verify_access_token(token, keyring(stored_key("ES256"), stored_key("RS256")), **options)


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_the_header_names_the_key_by_kid_and_by_certificate(algorithm: str) -> None:
    key = loaded(algorithm)
    header, _ = parts(sign_jwt(claims(), key))
    assert header["typ"] == "JWT" and header["alg"] == algorithm
    assert header["kid"] == key.key_id
    # x5c: standard base64 (not base64url) of the DER certificate
    assert header["x5c"] == [base64.b64encode(key.certificate_der).decode()]


def test_the_claims_are_the_specifications() -> None:
    _, payload = parts(sign_jwt(claims(), loaded()))
    assert set(payload) == {"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "access"}
    assert payload["iss"] == "dockgate" and payload["sub"] == SUBJECT
    assert payload["aud"] == "registry"  # a string: docker-registry 2.8 fails on a list
    assert (payload["iat"], payload["nbf"], payload["exp"]) == (int(NOW), int(NOW), int(NOW) + 300)
    assert payload["access"] == [
        {"type": "repository", "name": "team-a/app", "actions": ["pull", "push"]}
    ]
    assert isinstance(payload["jti"], str) and len(payload["jti"]) >= 20


def test_every_token_has_its_own_id() -> None:
    assert len({claims()["jti"] for _ in range(20)}) == 20


def test_an_empty_grant_is_an_empty_access_list() -> None:
    made = access_claims(
        issuer="i", subject=SUBJECT, audience="a", access=(), now=NOW, expires_at=NOW + 60
    )
    assert made["access"] == []


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_a_signed_token_verifies(algorithm: str) -> None:
    assert verify(sign_jwt(claims(), loaded(algorithm)))["sub"] == SUBJECT


def test_a_token_without_x5c_is_found_by_kid() -> None:
    token = sign_jwt(claims(), loaded())
    header, payload, _ = token.split(".")
    bare = _unb64(header)
    del bare["x5c"]
    signing_input = f"{_b64(bare)}.{payload}"
    resigned = f"{signing_input}.{_b64url(loaded().sign(signing_input.encode()))}"
    assert verify(resigned)["sub"] == SUBJECT


@pytest.mark.parametrize(
    ("more", "message"),
    [
        ({"issuer": "someone-else"}, "issuer"),
        ({"audience": "another-registry"}, "audience"),
        ({"now": NOW + 301}, "expired"),
        ({"now": NOW - 1}, "not valid yet"),
    ],
)
def test_a_token_for_someone_else_or_out_of_its_time_is_invalid(
    more: dict[str, Any], message: str
) -> None:
    with pytest.raises(TokenInvalid, match=message):
        verify(sign_jwt(claims(), loaded()), **more)


def test_the_leeway_is_the_registrys() -> None:
    token = sign_jwt(claims(), loaded())
    assert verify(token, now=NOW + 359, leeway=60)
    with pytest.raises(TokenInvalid, match="expired"):
        verify(token, now=NOW + 361, leeway=60)


def test_a_changed_payload_breaks_the_signature() -> None:
    header, _, signature = sign_jwt(claims(), loaded()).split(".")
    forged = _b64(claims(access=[{"type": "repository", "name": "prod/app", "actions": ["*"]}]))
    with pytest.raises(TokenInvalid, match="signature"):
        verify(f"{header}.{forged}.{signature}")


def test_a_token_signed_by_a_key_not_in_the_keyring_is_invalid() -> None:
    stranger = load_keyring([stored_key("ES256", NOW - 1)], NOW).signing
    assert stranger is not None
    with pytest.raises(TokenInvalid, match="not one of the signing keys"):
        verify(sign_jwt(claims(), stranger))
    # naming a trusted kid does not help without its certificate
    token = sign_jwt(claims(), replace(stranger, key_id=loaded().key_id))
    with pytest.raises(TokenInvalid):
        verify(token)


def test_an_algorithm_that_is_not_the_keys_is_invalid() -> None:
    token = sign_jwt(claims(), replace(loaded("ES256"), algorithm="RS256"))
    with pytest.raises(TokenInvalid, match="algorithm `RS256`"):
        verify(token)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a.b",
        "a.b.c.d",
        "!!.e30.e30",
        "e30.e30.!!",
        "W10.e30.AA",
        "bm90IGpzb24.e30.AA",
        "x" * 70000,
    ],
)
def test_malformed_tokens_are_invalid(token: str) -> None:
    with pytest.raises(TokenInvalid):
        read_jwt(token, keyring())


def _b64(value: dict[str, Any]) -> str:
    return _b64url(json.dumps(value, separators=(",", ":")).encode())


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    return value
