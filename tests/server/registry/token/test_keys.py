"""Token keys: libtrust key IDs, certificates, the keyring (grace period, bundle, JWKS)."""

from __future__ import annotations

import base64
import re
from dataclasses import replace
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from dockgate_server.registry.token.keys import (
    KEY_GRACE,
    KeyringCache,
    libtrust_key_id,
    load_keyring,
    new_token_key,
)
from tests.server.registry.token.keys_for_tests import NOW, loaded, stored_key

# a P-256 key, and its key ID computed apart from the code under test:
# openssl pkey -pubout -outform DER | openssl dgst -sha256 -binary | head -c 30 | base32 ...
KNOWN_KEY = b"""-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgMkN/d5dHo7R1YjKY
nJ4CH82ulVlG+QFap5NM8qkF0qKhRANCAAS51yVfMX+ELRk2IVnEI7HUSPUaD7iF
UWUJXJghvn7bsMsUS2gxp4kwUfGoD2Gr5jH0Av/Yj6cPyACPCRblzhFo
-----END PRIVATE KEY-----
"""
KNOWN_KEY_ID = "KT2O:4LIQ:5JJB:FV5I:UVCA:BL65:MZEY:WJW7:6ZVG:PKZC:DZIV:REIN"
KEY_ID = re.compile(r"(?:[A-Z2-7]{4}:){11}[A-Z2-7]{4}")


def test_the_key_id_follows_libtrusts_recipe() -> None:
    private = serialization.load_pem_private_key(KNOWN_KEY, password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert libtrust_key_id(private.public_key()) == KNOWN_KEY_ID


@pytest.mark.parametrize(
    ("algorithm", "kind"), [("ES256", ec.EllipticCurvePrivateKey), ("RS256", rsa.RSAPrivateKey)]
)
def test_a_new_key_has_its_id_and_a_self_signed_certificate(algorithm: str, kind: type) -> None:
    key = stored_key(algorithm)
    assert key.algorithm == algorithm and key.retired_at is None
    assert KEY_ID.fullmatch(key.key_id)
    private = serialization.load_pem_private_key(key.private_key.encode(), password=None)
    assert isinstance(private, kind)
    certificate = x509.load_pem_x509_certificate(key.certificate.encode())
    assert certificate.public_key() == private.public_key()
    assert certificate.issuer == certificate.subject
    certificate.verify_directly_issued_by(certificate)
    # valid from a little before it was made (a registry's clock may lag) for years
    assert certificate.not_valid_before_utc.timestamp() < key.created_at
    assert certificate.not_valid_after_utc.timestamp() > key.created_at + 5 * 365 * 86400


def test_the_private_key_is_never_in_a_keys_repr() -> None:
    key = stored_key()
    assert "PRIVATE" not in repr(key) and key.private_key not in repr(key)


def test_an_unknown_algorithm_is_refused() -> None:
    with pytest.raises(ValueError, match="algorithm `HS256`"):
        new_token_key("HS256", NOW)


def test_the_keyring_signs_with_the_current_key_and_verifies_with_those_in_grace() -> None:
    old = replace(stored_key("RS256"), retired_at=NOW - 60, trusted_until=NOW + 1)
    gone = replace(
        new_token_key("ES256", NOW - 2 * KEY_GRACE), retired_at=NOW - 120, trusted_until=NOW
    )
    current = stored_key("ES256")
    keyring = load_keyring([current, gone, old], NOW)
    assert keyring.signing is not None and keyring.signing.key_id == current.key_id
    assert [key.key_id for key in keyring.keys] == [old.key_id, current.key_id]
    assert keyring.get(gone.key_id) is None
    # the bundle: the current certificate first, then those in grace
    assert keyring.certificates() == current.certificate + old.certificate


def test_a_keyring_of_retired_keys_only_does_not_sign() -> None:
    retired = replace(stored_key(), retired_at=NOW - 10)
    keyring = load_keyring([retired], NOW)
    assert keyring.signing is None and keyring.get(retired.key_id) is not None
    assert load_keyring([], NOW).signing is None


def test_the_jwks_document_names_each_key_with_its_certificate() -> None:
    ec_key, rsa_key = stored_key("ES256"), replace(stored_key("RS256"), retired_at=NOW - 1)
    document = load_keyring([ec_key, rsa_key], NOW).jwks()
    first, second = document["keys"]
    assert first["kid"] == ec_key.key_id and first["alg"] == "ES256"
    assert first["kty"] == "EC" and first["crv"] == "P-256"
    private = serialization.load_pem_private_key(ec_key.private_key.encode(), password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    numbers = private.public_key().public_numbers()
    assert base64.urlsafe_b64decode(first["x"] + "=") == numbers.x.to_bytes(32, "big")
    assert base64.urlsafe_b64decode(first["y"] + "=") == numbers.y.to_bytes(32, "big")
    assert second["kid"] == rsa_key.key_id and second["kty"] == "RSA" and second["e"] == "AQAB"
    der = x509.load_pem_x509_certificate(rsa_key.certificate.encode()).public_bytes(
        serialization.Encoding.DER
    )
    assert base64.b64decode(second["x5c"][0]) == der
    assert "d" not in first and "d" not in second  # no private part


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"key_id": KNOWN_KEY_ID}, "the ID is not the key's own"),
        ({"algorithm": "RS256"}, "not a key for algorithm `RS256`"),
        ({"private_key": "not a pem"}, "does not load"),
        ({"certificate": stored_key("RS256").certificate}, "the certificate is not the key's"),
    ],
)
def test_a_stored_key_that_does_not_hold_together_is_refused(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        load_keyring([replace(stored_key(), **change)], NOW)


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_a_signature_verifies_with_its_key_only(algorithm: str) -> None:
    key = loaded(algorithm)
    signature = key.sign(b"data")
    if algorithm == "ES256":
        assert len(signature) == 64  # JWS: r || s, not DER
    assert key.verifies(signature, b"data")
    assert not key.verifies(signature, b"other data")
    other = loaded("RS256" if algorithm == "ES256" else "ES256")
    assert not other.verifies(signature, b"data")


def test_derived_secrets_differ_by_label_and_by_key() -> None:
    ec_key, rsa_key = loaded("ES256"), loaded("RS256")
    assert ec_key.secret(b"a") == ec_key.secret(b"a")
    assert len({ec_key.secret(b"a"), ec_key.secret(b"b"), rsa_key.secret(b"a")}) == 3


def test_the_keyring_cache_parses_each_key_once_and_follows_the_clock() -> None:
    current, retired = (
        stored_key("ES256"),
        replace(stored_key("RS256"), retired_at=NOW - 60, trusted_until=NOW + 10),
    )
    cache = KeyringCache()
    first = cache.keyring([current, retired], NOW)
    again = cache.keyring([current, retired], NOW + 5)
    assert [k.key_id for k in again.keys] == [retired.key_id, current.key_id]
    assert again.keys[1] is first.keys[1]  # not parsed again
    later = cache.keyring([current, retired], NOW + 10)  # the retired key's trust has ended
    assert [k.key_id for k in later.keys] == [current.key_id]
    assert later.signing is first.signing
    with pytest.raises(ValueError, match="does not load"):
        cache.keyring([replace(current, key_id="other", private_key="broken")], NOW)
