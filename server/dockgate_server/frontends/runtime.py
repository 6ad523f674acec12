"""The runtime of one process: its decision state (snapshot, cache, clock) as the doors see it.

The only module of `frontends` that holds the decision state: the doors are handed this as a
`door.Runtime` and never reach the store or a snapshot themselves.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from dockgate_server.analysis import (
    AccessChange,
    Finding,
    Proposal,
    preview,
    what_can,
    who_can,
)
from dockgate_server.analysis.directory import directory_of
from dockgate_server.credentials.login import Login
from dockgate_server.credentials.tokens import LoginVerifier
from dockgate_server.engine.decision import Decision
from dockgate_server.engine.request import RawContext
from dockgate_server.engine.snapshot import Snapshot
from dockgate_server.frontends.door import Freshness, Unavailable
from dockgate_server.registry.token import Keyring, KeyringCache
from dockgate_server.service.admin import AdminService
from dockgate_server.service.authorizer import AuthorizerService
from dockgate_server.service.clock import ServerClock
from dockgate_server.service.metrics import Metrics
from dockgate_server.service.state import DecisionState, StaleSnapshotError
from dockgate_server.store.errors import StoreError
from dockgate_server.store.model import TokenKey
from dockgate_server.store.port import FleetStore, open_store

__all__ = ["ProcessRuntime"]


class ProcessRuntime:
    """A `door.Runtime` over a `DecisionState`; `metrics` None: a process that decides nothing
    (the parent of several workers: its state serves the credential calls and the light doors)."""

    def __init__(self, state: DecisionState, metrics: Metrics | None) -> None:
        self.state = state
        self._metrics = metrics
        self._logins = LoginVerifier(lambda: self._fresh().credentials, state.clock.now)
        self._store: FleetStore | None = None
        """opened on first use, for what the snapshot does not hold (signing keys, the fleet
        a preview sets a proposal against)"""
        self._store_lock = threading.Lock()
        self._keyrings = KeyringCache()
        self._keys: tuple[int, list[TokenKey]] | None = None

    @classmethod
    def start(
        cls,
        store: str | Path,
        metrics: Metrics | None,
        *,
        poll_interval: float = 0.02,
        cache_size: int = 100_000,
        clock_offset_file: Path | None = None,
        max_staleness: float | None = None,
    ) -> ProcessRuntime:
        """A runtime whose state follows `store`, its first snapshot built when this returns."""

        def swapped(snapshot: Snapshot, seconds: float) -> None:
            if metrics is not None:
                metrics.revision.set(snapshot.revision)
                metrics.compile_seconds.set(seconds)

        def polled() -> None:  # the cache counts in plain integers; the metrics catch up each poll
            if metrics is not None:
                metrics.count_cache(state.cache.hits, state.cache.misses)

        state = DecisionState(
            store,
            poll_interval=poll_interval,
            cache_size=cache_size,
            on_swap=swapped,
            on_poll=polled,
            clock=ServerClock(clock_offset_file),
            max_staleness=max_staleness,
        )
        state.start()
        return cls(state, metrics)

    def stop(self) -> None:
        self.state.stop()
        with self._store_lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    # -- door.Runtime --------------------------------------------------------------------------

    @property
    def clock(self) -> ServerClock:
        return self.state.clock

    @property
    def metrics(self) -> Metrics | None:
        return self._metrics

    def decide(self, principal: str, action: str, resource: str, context: RawContext) -> Decision:
        return self.state.cache.decide(
            self._fresh(), principal, action, resource, context, now=self.state.clock.now()
        )

    async def wait_for_revision(self, revision: int, timeout: float) -> bool:
        try:
            return await self.state.at_least(revision, timeout) is not None
        except StaleSnapshotError as stale:
            raise Unavailable(stale.message) from None

    def repositories(self) -> list[str]:
        return list(self._fresh().repositories)

    def verify_login(self, password: str) -> Login:
        return self._logins(password)

    def decision_service(self) -> AuthorizerService:
        if self._metrics is None:
            raise RuntimeError("a runtime without metrics makes no decisions")
        return AuthorizerService(self.state, self._metrics)

    def admin_service(self, registry_region: str | None) -> AdminService:
        state = self.state
        return AdminService(
            state.store_url,
            state.nudge,
            state=state,
            clock=state.clock,
            registry_region=registry_region,
        )

    def freshness(self) -> Freshness:
        state = self.state
        return Freshness(state.revision, state.staleness, state.store_reachable, state.too_stale)

    def principals(self) -> list[str]:
        snapshot = self._fresh()
        return sorted(directory_of(snapshot, self.state.clock.now()).principals)

    def token_keyring(self) -> Keyring:
        revision = self.state.revision
        kept = self._keys
        if kept is None or kept[0] != revision:
            try:
                with self._store_lock:
                    keys = list(self._opened().token_keys())
            except StoreError as problem:
                raise Unavailable(f"the signing keys cannot be read: {problem}") from None
            kept = self._keys = (revision, keys)
        return self._keyrings.keyring(kept[1], self.state.clock.now())

    def who_can(
        self, action: str, repository: str, *, include_denied: bool = False
    ) -> tuple[int, list[Finding]]:
        snapshot = self._fresh()
        found = who_can(
            snapshot, action, repository, now=self.state.clock.now(), include_denied=include_denied
        )
        return snapshot.revision, found

    def what_can(
        self, principal: str, repository: str | None = None, *, include_denied: bool = False
    ) -> tuple[int, list[Finding]]:
        snapshot = self._fresh()
        found = what_can(
            snapshot,
            principal,
            repository,
            now=self.state.clock.now(),
            include_denied=include_denied,
        )
        return snapshot.revision, found

    def preview(self, proposal: Proposal) -> tuple[int, list[AccessChange]]:
        # the proposal is set against the fleet at the snapshot's own revision: read the fleet,
        # then take the snapshot of that revision (the follower reaches it within a poll)
        for _ in range(3):
            try:
                with self._store_lock:
                    store = self._opened()
                    with store.reading() as revision:
                        fleet = store.load_fleet()
            except StoreError as problem:
                raise Unavailable(f"the store cannot be read: {problem}") from None
            snapshot = self._snapshot_reaching(revision, timeout=5.0)
            if snapshot.revision == revision:
                return revision, preview(snapshot, fleet, proposal, now=self.state.clock.now())
        raise Unavailable("the store kept changing: the proposal could not be set against it")

    def _snapshot_reaching(self, revision: int, timeout: float) -> Snapshot:
        """The snapshot once it reaches `revision` (or the newest when `timeout` runs out); for a
        caller on a thread of its own, not the event loop."""
        deadline = time.monotonic() + timeout
        snapshot = self._fresh()
        while snapshot.revision < revision and time.monotonic() < deadline:
            self.state.nudge()
            time.sleep(0.01)
            snapshot = self._fresh()
        return snapshot

    def _opened(self) -> FleetStore:
        if self._store is None:
            self._store = open_store(self.state.store_url)
        return self._store

    # -- what the app reads of the store's freshness ------------------------------------------

    @property
    def staleness(self) -> float:
        return self.state.staleness

    @property
    def store_reachable(self) -> bool:
        return self.state.store_reachable

    @property
    def too_stale(self) -> bool:
        return self.state.too_stale

    @property
    def revision(self) -> int:
        return self.state.revision

    def _fresh(self) -> Snapshot:
        try:
            return self.state.snapshot
        except StaleSnapshotError as stale:  # past --max-staleness: never old policy
            raise Unavailable(stale.message) from None
