"""The `BinaryEquals` operator: base64 on both sides, compared as bytes."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence

from dockgate_server.policy.glob import Chunk

__all__ = ["decoded", "policy_decoded"]


def decoded(value: str) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def policy_decoded(chunks: Sequence[Chunk]) -> bytes | None:
    return decoded("".join(chunk.text for chunk in chunks))
