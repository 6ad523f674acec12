"""ARN operators: six colon-separated parts, each matched as a pattern within its own part."""

from __future__ import annotations

from collections.abc import Sequence

from dockgate_server.policy.glob import Chunk, Glob, compile_chunks

__all__ = ["arn_parts", "like", "policy_arn"]

_PARTS = 6


def arn_parts(value: str) -> tuple[str, ...] | None:
    parts = value.split(":", _PARTS - 1)
    return tuple(parts) if len(parts) == _PARTS else None


def policy_arn(chunks: Sequence[Chunk]) -> tuple[Glob, ...] | None:
    """One pattern per part: a `*` in the region part cannot swallow a colon."""
    parts: list[list[Chunk]] = [[]]
    for chunk in chunks:
        pieces = chunk.text.split(":")
        for position, piece in enumerate(pieces):
            if position:
                if len(parts) < _PARTS:
                    parts.append([])
                else:  # colons in the remainder belong to it
                    parts[-1].append(Chunk(":", False))
            parts[-1].append(Chunk(piece, chunk.wild))
    if len(parts) != _PARTS:
        return None
    return tuple(compile_chunks(part) for part in parts)


def like(request: tuple[str, ...], policy: tuple[Glob, ...]) -> bool:
    return all(glob.matches(part) for glob, part in zip(policy, request, strict=True))
