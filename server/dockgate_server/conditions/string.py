"""String operators: `StringEquals`, `StringEqualsIgnoreCase`, `StringLike` and their negations."""

from __future__ import annotations

from collections.abc import Sequence

from dockgate_server.policy.glob import Chunk, Glob, compile_chunks

__all__ = ["equals", "folded", "like", "pattern", "text", "text_folded"]


def text(value: str) -> str:
    return value


def text_folded(value: str) -> str:
    # Unicode simple case folding; AWS does not say which folding it uses
    return value.casefold()


def joined(chunks: Sequence[Chunk]) -> str:
    return "".join(chunk.text for chunk in chunks)


def folded(chunks: Sequence[Chunk]) -> str:
    return joined(chunks).casefold()


def pattern(chunks: Sequence[Chunk]) -> Glob:
    return compile_chunks(chunks)


def equals(request: str, policy: str) -> bool:
    return request == policy


def like(request: str, policy: Glob) -> bool:
    return policy.matches(request)
