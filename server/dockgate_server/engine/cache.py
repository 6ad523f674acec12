"""The decision cache: bounded, keyed by the revision and every input that can change the answer.

A decision remembers which context keys it read (present or not). A later request hits only when
it agrees on every one of them, so a decision that read `aws:CurrentTime` is reused only at that
same instant, and one that read nothing from the context serves every context. A new revision
makes old entries unreachable: there is no invalidation code to get wrong.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from cachetools import LRUCache

from dockgate_server.conditions.keys import ContextValue
from dockgate_server.engine.decide import ContextReads, Question, decide_as
from dockgate_server.engine.decision import Decision
from dockgate_server.engine.request import RawContext, is_store_key
from dockgate_server.engine.snapshot import Snapshot

__all__ = ["ContextReads", "DecisionCache"]

_MAX_VARIANTS = 8
"""Decisions kept per (revision, principal, action, resource) that differ in context."""


@dataclass(frozen=True, slots=True)
class _Variant:
    reads: tuple[tuple[str, ContextValue | None], ...]
    """each key the decision read, with the value the caller supplied (None: not supplied)"""
    decision: Decision
    pinned: frozenset[str] = frozenset()
    """the keys the caller supplied that the store may define: whether they were given changes
    the decision's `errors` (each one ignored is listed) even when the decision read none"""

    def fits(self, supplied: Mapping[str, ContextValue], pinned: frozenset[str]) -> bool:
        return pinned == self.pinned and all(
            supplied.get(key) == value for key, value in self.reads
        )


_Key = tuple[int, str, str, str]
_NONE: frozenset[str] = frozenset()


class DecisionCache:
    """Thread-safe; `hits` and `misses` count lookups since creation. A `maxsize` of 0 turns the
    cache off: every lookup is a miss, decided afresh and not kept."""

    def __init__(self, maxsize: int = 100_000) -> None:
        self.enabled = maxsize > 0
        self.maxsize = maxsize
        self._entries: LRUCache[_Key, tuple[_Variant, ...]] = LRUCache(maxsize=max(1, maxsize))
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def decide(
        self,
        snapshot: Snapshot,
        principal: str,
        action: str,
        resource: str,
        context: RawContext | None = None,
        *,
        now: float | None = None,
    ) -> Decision:
        """The cached decision for this request, or a fresh one (then cached).

        `now` (the wall clock when None) is checked against the expiry of a session Dockgate
        issued before any lookup, so a cached decision never outlives its session."""
        return self.answer(snapshot, principal, action, resource, context, now=now)[0]

    def answer(
        self,
        snapshot: Snapshot,
        principal: str,
        action: str,
        resource: str,
        context: RawContext | None = None,
        *,
        now: float | None = None,
    ) -> tuple[Decision, float]:
        """`decide`, and until when its decision holds: the expiry of the caller's issued
        session (`math.inf` for every other caller), for a cache in front of this one."""
        moment = time.time() if now is None else now
        session = snapshot.credentials.sessions.get(principal)  # the call's one lookup
        if session is not None and session.is_expired(moment):
            expired = dataclasses.replace(session.expired_decision(), revision=snapshot.revision)
            return expired, moment  # holds now; the clock is not trusted to move only forward
        until = math.inf if session is None else session.expires_at
        question = Question.of(principal, action, resource, context)
        if not self.enabled:
            self.misses += 1
            return decide_as(snapshot, question, session, now=moment), until
        supplied = question.context
        pinned = frozenset(k for k in supplied if is_store_key(k)) if supplied else _NONE
        key = (snapshot.revision, principal, action, resource)
        with self._lock:
            variants = self._entries.get(key, ())
            for variant in variants:
                if variant.fits(supplied, pinned):
                    self.hits += 1
                    return variant.decision, until
            self.misses += 1
        # building the request reads `aws:resourceaccount`: it can make the request cross-account
        read = {"aws:resourceaccount"}
        decision = decide_as(snapshot, question, session, now=moment, reads=read)
        variant = _Variant(tuple((k, supplied.get(k)) for k in sorted(read)), decision, pinned)
        with self._lock:
            kept = self._entries.get(key, ())
            self._entries[key] = (variant, *kept)[:_MAX_VARIANTS]
        return decision, until
