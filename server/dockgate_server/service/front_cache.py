"""The front cache: a repeat of an `Authorize` request's exact bytes, at the revision that answered
it, gets the answer's bytes back without decoding, converting, deciding or encoding anything.

Equal bytes get equal answers because a decision reads nothing but the request and the snapshot:
the engine never fills a context key from the clock (`aws:CurrentTime`, `aws:EpochTime` and the
like are what the caller sent, so they are part of the bytes). The one thing the clock decides is
whether a session Dockgate issued has expired; an entry for such a caller keeps that instant and
is not used from then on. A new revision empties the cache: no entry outlives its snapshot.

Used from the event loop's thread only (each worker process has its own), so it takes no lock.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

__all__ = ["FrontCache", "FrontEntry"]


class FrontEntry(NamedTuple):
    response: bytes
    """the encoded `AuthorizeResponse`"""
    outcome: str
    """for the decision counter, which a hit moves as a miss does"""
    valid_until: float
    """when the answer stops holding (an issued session's expiry); `math.inf`: never"""


class FrontCache:
    """At most `maxsize` entries, all of one revision; the oldest goes first when full."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.hits = 0
        self._revision = -1
        self._entries: dict[bytes, FrontEntry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, revision: int, request: bytes, now: Callable[[], float]) -> FrontEntry | None:
        if revision != self._revision:
            return None
        entry = self._entries.get(request)
        if entry is None or (entry.valid_until != math.inf and now() >= entry.valid_until):
            return None
        self.hits += 1
        return entry

    def put(self, revision: int, request: bytes, entry: FrontEntry) -> None:
        if revision != self._revision:
            if revision < self._revision:
                return  # answered from a snapshot that has since been replaced
            self._revision = revision
            self._entries = {}
        entries = self._entries
        if len(entries) >= self.maxsize:
            # dicts keep insertion order: the first key is the oldest (FIFO costs no bookkeeping
            # on a hit, where an LRU would move the entry on every one)
            del entries[next(iter(entries))]
        entries[request] = entry
