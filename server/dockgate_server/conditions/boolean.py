"""The `Bool` operator: `true` / `false`, in any letter case."""

from __future__ import annotations

from collections.abc import Sequence

from dockgate_server.policy.glob import Chunk

__all__ = ["boolean", "policy_boolean"]


def boolean(value: str) -> bool | None:
    lowered = value.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    return None


def policy_boolean(chunks: Sequence[Chunk]) -> bool | None:
    return boolean("".join(chunk.text for chunk in chunks))
