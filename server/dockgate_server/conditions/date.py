"""Date operators: ISO 8601 (W3C profile) or epoch seconds, both compared as instants."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache

from dockgate_server.policy.glob import Chunk

__all__ = ["instant", "policy_instant"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@lru_cache(maxsize=4096)  # a pure function of the text: request values repeat
def instant(value: str) -> int | None:
    """Microseconds since the epoch, or None when `value` is not a date AWS accepts."""
    if value and (value.isdigit() or (value[0] == "-" and value[1:].isdigit())) and value.isascii():
        return int(value) * 1_000_000
    moment = _parse_iso(value)
    if moment is None:
        return None
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def policy_instant(chunks: Sequence[Chunk]) -> int | None:
    return instant("".join(chunk.text for chunk in chunks))


def _parse_iso(value: str) -> datetime | None:
    """`YYYY`, `YYYY-MM`, `YYYY-MM-DD`, then `Thh:mm`, `:ss`, `.s…` and a zone (`Z`, `±hh:mm`)."""
    if not value.isascii():
        return None
    date_part, separator, time_part = value.partition("T")
    fields = date_part.split("-")
    if not 1 <= len(fields) <= 3 or len(fields[0]) != 4:
        return None
    if any(len(f) != 2 for f in fields[1:]) or not all(f.isdigit() for f in fields):
        return None
    if separator and len(fields) != 3:
        return None
    year, month, day = (int(f) for f in [*fields, "1", "1"][:3])
    try:
        if not separator:
            return datetime(year, month, day, tzinfo=UTC)
        clock, zone = _split_zone(time_part)
        if zone is None:
            return None
        hour, minute, second, micro = _parse_clock(clock)
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=zone)
    except ValueError:
        return None


def _split_zone(text: str) -> tuple[str, timezone | None]:
    if text.endswith(("Z", "z")):
        return text[:-1], UTC
    for sign in "+-":
        clock, found, offset = text.rpartition(sign)
        if found and len(offset) == 5 and offset[2] == ":":
            hours, minutes = offset[:2], offset[3:]
            if hours.isdigit() and minutes.isdigit():
                delta = timedelta(hours=int(hours), minutes=int(minutes))
                return clock, timezone(delta if sign == "+" else -delta)
    # W3C profile of ISO 8601 (semantics §4.4): a time always carries its zone
    return text, None


def _parse_clock(clock: str) -> tuple[int, int, int, int]:
    main, dot, fraction = clock.partition(".")
    parts = main.split(":")
    if len(parts) not in (2, 3) or any(len(p) != 2 or not p.isdigit() for p in parts):
        raise ValueError(clock)
    if dot and (not fraction.isdigit() or len(parts) != 3):
        raise ValueError(clock)
    micro = int((fraction + "000000")[:6]) if fraction else 0
    second = int(parts[2]) if len(parts) == 3 else 0
    return int(parts[0]), int(parts[1]), second, micro
