"""Registry token-signing keys: made, named as libtrust names them, loaded into the keyring that
signs, verifies, and publishes them (the certificate bundle and the JWKS document).

docker-registry 2.8 finds a token's key by its `kid` in libtrust's key-ID format, matched
against the certificates of its `rootcertbundle`, or by the `x5c` chain a token carries
(`docs/token-auth.md`). Each key gets a self-signed certificate: what the bundle holds.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import NameOID

from dockgate_server.store.model import TokenKey

__all__ = [
    "ALGORITHMS",
    "CERTIFICATE_LIFETIME",
    "KEY_GRACE",
    "Keyring",
    "KeyringCache",
    "LoadedKey",
    "libtrust_key_id",
    "load_keyring",
    "new_token_key",
]

ALGORITHMS = ("ES256", "RS256")
KEY_GRACE = 24 * 3600
"""seconds a retired key still verifies and stays in the bundle, by default: the registries that
read the bundle before a rotation keep accepting its tokens until they restart with the new one"""
CERTIFICATE_LIFETIME = 10 * 365 * 24 * 3600
"""a token whose `x5c` certificate has expired is refused: the certificate outlives the key"""
_RSA_BITS = 2048
_EC_COORDINATE = 32
"""bytes of a P-256 coordinate, and of each half of an ES256 signature"""
_CLOCK_SKEW = 300
"""seconds a certificate is valid before it was made, for a registry whose clock is behind"""
_PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
_PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


def new_token_key(algorithm: str, now: float) -> TokenKey:
    """A fresh key for `algorithm` (`ES256`: P-256, `RS256`: RSA 2048) and its certificate."""
    private: _PrivateKey
    if algorithm == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    elif algorithm == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS)
    else:
        raise ValueError(f"algorithm `{algorithm}`: expected one of {', '.join(ALGORITHMS)}")
    key_id = libtrust_key_id(private.public_key())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dockgate token signer"),
            x509.NameAttribute(NameOID.COMMON_NAME, key_id),  # 59 characters: CN allows 64
        ]
    )
    start = datetime.datetime.fromtimestamp(int(now) - _CLOCK_SKEW, datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(seconds=CERTIFICATE_LIFETIME))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return TokenKey(
        key_id,
        algorithm,
        pem,
        certificate.public_bytes(serialization.Encoding.PEM).decode(),
        now,
    )


def libtrust_key_id(public_key: _PublicKey) -> str:
    """libtrust's key ID: SHA-256 of the DER SubjectPublicKeyInfo, its first 30 bytes in
    unpadded base32, in 12 groups of 4 joined by `:`."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    text = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(text[i : i + 4] for i in range(0, len(text), 4))


@dataclass(frozen=True, slots=True)
class LoadedKey:
    """A stored key, parsed: what signs and verifies."""

    key_id: str
    algorithm: str
    private_key: _PrivateKey
    certificate: x509.Certificate
    created_at: float
    retired_at: float | None

    @property
    def public_key(self) -> _PublicKey:
        return self.private_key.public_key()

    @property
    def certificate_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    def sign(self, data: bytes) -> bytes:
        """A JWS signature: for ES256 the raw `r || s` (not DER), for RS256 PKCS #1 v1.5."""
        if isinstance(self.private_key, ec.EllipticCurvePrivateKey):
            der = self.private_key.sign(data, ec.ECDSA(hashes.SHA256()))
            r, s = decode_dss_signature(der)
            return r.to_bytes(_EC_COORDINATE, "big") + s.to_bytes(_EC_COORDINATE, "big")
        return self.private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def verifies(self, signature: bytes, data: bytes) -> bool:
        public = self.public_key
        try:
            if isinstance(public, ec.EllipticCurvePublicKey):
                if len(signature) != 2 * _EC_COORDINATE:
                    return False
                r = int.from_bytes(signature[:_EC_COORDINATE], "big")
                s = int.from_bytes(signature[_EC_COORDINATE:], "big")
                public.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
            else:
                public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return False
        return True

    def secret(self, label: bytes) -> bytes:
        """32 bytes only this key's holders can derive, one per `label` (HKDF-SHA256 of the
        private key): every replica reading the store derives the same."""
        material = self.private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(material)

    def jwk(self) -> dict[str, Any]:
        """The public key as a JSON Web Key, with its certificate (`x5c`)."""
        jwk: dict[str, Any] = {"kid": self.key_id, "alg": self.algorithm, "use": "sig"}
        public = self.public_key
        if isinstance(public, ec.EllipticCurvePublicKey):
            numbers = public.public_numbers()
            jwk |= {
                "kty": "EC",
                "crv": "P-256",
                "x": _b64url(numbers.x.to_bytes(_EC_COORDINATE, "big")),
                "y": _b64url(numbers.y.to_bytes(_EC_COORDINATE, "big")),
            }
        else:
            rsa_numbers = public.public_numbers()
            jwk |= {
                "kty": "RSA",
                "n": _b64url(_unsigned(rsa_numbers.n)),
                "e": _b64url(_unsigned(rsa_numbers.e)),
            }
        jwk["x5c"] = [base64.b64encode(self.certificate_der).decode()]
        return jwk


class Keyring:
    """The keys a token server signs with (the current one) and verifies with (the current one
    and those retired within the grace period)."""

    def __init__(self, keys: Sequence[LoadedKey]) -> None:
        """`keys`: the current one (not retired), if any, last."""
        self.keys = tuple(keys)
        self._by_id = {key.key_id: key for key in self.keys}
        self._by_certificate = {key.certificate_der: key for key in self.keys}

    @property
    def signing(self) -> LoadedKey | None:
        """The key new tokens are signed with; None when none has been made."""
        if self.keys and self.keys[-1].retired_at is None:
            return self.keys[-1]
        return None

    def get(self, key_id: str) -> LoadedKey | None:
        return self._by_id.get(key_id)

    def by_certificate(self, der: bytes) -> LoadedKey | None:
        return self._by_certificate.get(der)

    def certificates(self) -> str:
        """The PEM bundle a registry trusts (`rootcertbundle`): the current key's certificate
        first, then those of the keys in their grace period."""
        return "".join(
            key.certificate.public_bytes(serialization.Encoding.PEM).decode()
            for key in reversed(self.keys)
        )

    def jwks(self) -> dict[str, Any]:
        """The JWKS document (`{"keys": [...]}`), the current key first."""
        return {"keys": [key.jwk() for key in reversed(self.keys)]}


def load_keyring(keys: Iterable[TokenKey], now: float) -> Keyring:
    """The keyring of the stored `keys` at `now`, without the retired keys no longer trusted.
    Raises `ValueError` for a key whose PEM does not load or whose ID is not its own."""
    loaded = []
    for key in keys:
        if key.trusted_until is not None and key.trusted_until <= now:
            continue
        loaded.append(_load(key))
    return Keyring(sorted(loaded, key=_signing_order))


class KeyringCache:
    """Keyrings of the stored keys, each key parsed once: what a token server calls on every
    request with the keys its runtime last read from the store (they change only on rotation,
    while which retired keys are still trusted changes with the clock)."""

    def __init__(self) -> None:
        self._loaded: dict[TokenKey, LoadedKey] = {}

    def keyring(self, keys: Iterable[TokenKey], now: float) -> Keyring:
        """`load_keyring(keys, now)`, parsing only keys not seen before. Raises `ValueError`."""
        current = {
            key: self._loaded.get(key) or _load(key)
            for key in keys
            if key.trusted_until is None or key.trusted_until > now
        }
        self._loaded = current  # keys gone from the store are forgotten
        return Keyring(sorted(current.values(), key=_signing_order))


def _signing_order(key: LoadedKey) -> tuple[bool, float, str]:
    return (key.retired_at is None, key.created_at, key.key_id)


def _load(key: TokenKey) -> LoadedKey:
    where = f"token key `{key.key_id}`"
    try:
        private = serialization.load_pem_private_key(key.private_key.encode(), password=None)
        certificate = x509.load_pem_x509_certificate(key.certificate.encode())
    except ValueError:
        raise ValueError(f"{where}: the stored key or certificate does not load") from None
    if not (
        (key.algorithm == "ES256" and isinstance(private, ec.EllipticCurvePrivateKey))
        or (key.algorithm == "RS256" and isinstance(private, rsa.RSAPrivateKey))
    ):
        raise ValueError(f"{where}: not a key for algorithm `{key.algorithm}`")
    if libtrust_key_id(private.public_key()) != key.key_id:
        raise ValueError(f"{where}: the ID is not the key's own")
    if certificate.public_key() != private.public_key():
        raise ValueError(f"{where}: the certificate is not the key's")
    return LoadedKey(
        key.key_id, key.algorithm, private, certificate, key.created_at, key.retired_at
    )


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unsigned(number: int) -> bytes:
    return number.to_bytes(max(1, (number.bit_length() + 7) // 8), "big")
