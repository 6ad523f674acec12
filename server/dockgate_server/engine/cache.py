"""The decision cache: bounded, keyed by the revision and every input that can change the answer.

A decision remembers which context keys it read (present or not). A later request hits only when
it agrees on every one of them, so a decision that read `aws:CurrentTime` is reused only at that
same instant, and one that read nothing from the context serves every context. A new revision
makes old entries unreachable: there is no invalidation code to get wrong.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from cachetools import LRUCache

from dockgate_server.conditions.keys import ContextValue
from dockgate_server.engine.authorize import authorize
from dockgate_server.engine.decision import Decision
from dockgate_server.engine.request import RawContext, is_store_key, normalize_context
from dockgate_server.engine.snapshot import Snapshot

__all__ = ["ContextReads", "DecisionCache"]

_MAX_VARIANTS = 8
"""Decisions kept per (revision, principal, action, resource) that differ in context."""


class ContextReads(Mapping[str, ContextValue]):
    """The request context, recording each key a decision looks up."""

    __slots__ = ("_context", "read")

    def __init__(self, context: Mapping[str, ContextValue]) -> None:
        self._context = context
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> ContextValue:
        self.read.add(key)
        return self._context[key]

    def get(self, key: str, default: object = None) -> ContextValue | None:  # type: ignore[override]
        self.read.add(key)
        value = self._context.get(key)
        return value if value is not None else default  # type: ignore[return-value]

    def __iter__(self) -> Iterator[str]:
        self.read.update(self._context)  # whoever iterates has read everything
        return iter(self._context)

    def __len__(self) -> int:
        return len(self._context)


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
        moment = time.time() if now is None else now
        expired = snapshot.expired_session(principal, moment)
        if expired is not None:
            return expired
        if not self.enabled:
            self.misses += 1
            return snapshot.authorize(principal, action, resource, context, now=moment)
        supplied = normalize_context(context or {})
        pinned = frozenset(k for k in supplied if is_store_key(k)) if supplied else _NONE
        key = (snapshot.revision, principal, action, resource)
        with self._lock:
            variants = self._entries.get(key, ())
            for variant in variants:
                if variant.fits(supplied, pinned):
                    self.hits += 1
                    return variant.decision
            self.misses += 1
        prepared = snapshot.prepare(principal, action, resource, context, now=moment)
        if isinstance(prepared, Decision):
            decision, read = prepared, set[str]()
        else:
            request, policies = prepared
            reads = ContextReads(request.context)
            decision = authorize(dataclasses.replace(request, context=reads), policies)
            # building the request already read this one: it can make the request cross-account
            read = reads.read | {"aws:resourceaccount"}
        variant = _Variant(tuple((k, supplied.get(k)) for k in sorted(read)), decision, pinned)
        with self._lock:
            kept = self._entries.get(key, ())
            self._entries[key] = (variant, *kept)[:_MAX_VARIANTS]
        return decision
