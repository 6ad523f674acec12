"""Rows of the `token_keys` table to and from `TokenKey`, the same for every backend."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from dockgate_server.store.model import TokenKey

__all__ = ["TOKEN_KEY_COLUMNS", "token_key_row", "token_keys_from_rows"]

TOKEN_KEY_COLUMNS = (
    "key_id, algorithm, private_key, certificate, created_at, retired_at, trusted_until"
)
"""the columns of a token-key row, in the order `token_key_row` and `token_keys_from_rows` use"""


def token_key_row(key: TokenKey) -> tuple[Any, ...]:
    return (
        key.key_id,
        key.algorithm,
        key.private_key,
        key.certificate,
        key.created_at,
        key.retired_at,
        key.trusted_until,
    )


def token_keys_from_rows(rows: Iterable[Sequence[Any]]) -> list[TokenKey]:
    """The keys of `rows`, oldest first and the current one (not retired) last."""
    keys = [
        TokenKey(
            str(key_id),
            str(algorithm),
            str(private_key),
            str(certificate),
            float(created),
            None if retired is None else float(retired),
            None if until is None else float(until),
        )
        for key_id, algorithm, private_key, certificate, created, retired, until in rows
    ]
    return sorted(keys, key=lambda k: (k.retired_at is None, k.created_at, k.key_id))
