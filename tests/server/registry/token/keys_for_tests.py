"""Token keys made once per test session: RSA keys take a while to make."""

from __future__ import annotations

import functools

from dockgate_server.registry.token.keys import Keyring, LoadedKey, load_keyring, new_token_key
from dockgate_server.store.model import TokenKey

NOW = 1_700_000_000.0


def stored_key(algorithm: str = "ES256", created_at: float = NOW - 60) -> TokenKey:
    """The same key for the same arguments, however they are spelled."""
    return _made(algorithm, created_at)


@functools.cache
def _made(algorithm: str, created_at: float) -> TokenKey:
    return new_token_key(algorithm, created_at)


def loaded(algorithm: str = "ES256") -> LoadedKey:
    key = load_keyring([stored_key(algorithm)], NOW).signing
    assert key is not None
    return key


def keyring(*keys: TokenKey) -> Keyring:
    return load_keyring(keys or [stored_key()], NOW)
