"""ARNs: split into partition, service, region, account and the resource remainder."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Arn", "is_account_id", "split_arn", "split_arn_pattern"]


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
