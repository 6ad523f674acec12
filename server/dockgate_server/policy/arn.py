"""ARNs: split into partition, service, region, account and the resource remainder."""

from __future__ import annotations

from typing import NamedTuple

from dockgate_server.policy.glob import Chunk
from dockgate_server.policy.variables import Template

__all__ = ["Arn", "has_wildcard_type", "is_account_id", "split_arn", "split_arn_pattern"]

_TYPE_SEPARATORS = ("/", ":")
_WILDCARDS = ("*", "?")


class Arn(NamedTuple):
    partition: str
    service: str
    region: str
    account: str
    resource: str


def split_arn(text: str) -> Arn | None:
    """The six parts of `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`, or None.

    The remainder keeps any further colons (`repository/a:b` is one resource).
    """
    parts = text.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return None
    return Arn(parts[1], parts[2], parts[3], parts[4], parts[5])


def split_arn_pattern(text: str) -> tuple[str, str, str, str, str, str] | None:
    """Like `split_arn` for a policy pattern, but colons inside `${…}` do not split.

    `arn:aws:ecr:*:*:repository/${aws:username}/*` has its variable's colon in the remainder.
    The first part is returned as written, so a caller can match it as a pattern too.
    """
    parts: list[str] = []
    start = 0
    depth = 0
    index = 0
    while index < len(text) and len(parts) < 5:
        if text.startswith("${", index):
            depth += 1
            index += 2
            continue
        char = text[index]
        if char == "}" and depth:
            depth -= 1
        elif char == ":" and not depth:
            parts.append(text[start:index])
            start = index + 1
        index += 1
    if len(parts) != 5:
        return None
    return (parts[0], parts[1], parts[2], parts[3], parts[4], text[start:])


def is_account_id(text: str) -> bool:
    return len(text) == 12 and text.isascii() and text.isdigit()


def has_wildcard_type(remainder: Template) -> bool:
    """Whether the resource-type word of an ARN pattern's remainder holds a wildcard.

    The type word is the text before the first `/` or `:` (`repository` in
    `repository/team-a/*`). A remainder without either separator (`*`) is one pattern, not a
    type word. Escapes (`${*}`) and variables are literal text, never wildcards.
    """
    wild = False
    for part in remainder:
        if not isinstance(part, Chunk):
            continue
        cut = min((i for i in map(part.text.find, _TYPE_SEPARATORS) if i >= 0), default=-1)
        head = part.text if cut < 0 else part.text[:cut]
        wild = wild or (part.wild and any(w in head for w in _WILDCARDS))
        if cut >= 0:
            return wild
    return False
