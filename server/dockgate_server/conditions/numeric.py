"""Numeric operators: integers and decimals compared by value (`"10"` equals `"10.0"`)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from dockgate_server.policy.glob import Chunk

__all__ = ["number", "policy_number"]


@lru_cache(maxsize=4096)  # a pure function of the text: request values repeat
def number(value: str) -> Decimal | None:
    """A plain decimal number, or None: no exponent, no spaces, no trailing text (`"10abc"`)."""
    digits = value[1:] if value[:1] in "+-" else value
    whole, _, fraction = digits.partition(".")
    if not (whole or fraction) or not (whole + fraction).isascii():
        return None
    if (whole and not whole.isdigit()) or (fraction and not fraction.isdigit()):
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        return None


def policy_number(chunks: Sequence[Chunk]) -> Decimal | None:
    return number("".join(chunk.text for chunk in chunks))
