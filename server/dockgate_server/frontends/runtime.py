"""The runtime of one process: its decision state (snapshot, cache, clock) as the doors see it.

The only module of `frontends` that holds the decision state: the doors are handed this as a
`door.Runtime` and never reach the store or a snapshot themselves.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from dockgate_server.analysis import (
    AccessChange,
    BundleProposal,
    Finding,
    Proposal,
    ProposalError,
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
from dockgate_server.store.bundle import BundleError, bundle_to_fleet
from dockgate_server.store.errors import StoreError
from dockgate_server.store.model import Document, Fleet, TokenKey
from dockgate_server.store.port import FleetStore, open_store

__all__ = ["ProcessRuntime"]

_T = TypeVar("_T")


class ProcessRuntime:
    """A `door.Runtime` over a `DecisionState`; `metrics` None: a process that decides nothing
    (the parent of several workers: its state serves the credential calls and the light doors)."""

    def __init__(self, state: DecisionState, metrics: Metrics | None) -> None:
        self.state = state
        self._metrics = metrics
        self._logins = LoginVerifier(lambda: self._fresh().credentials, state.clock.now)
        self._store: FleetStore | None = None
        """opened on first use, for what the snapshot does not hold (signing keys, the fleet
        a preview sets a proposal against, policy documents); used only on `_store_thread`"""
        self._store_thread = ThreadPoolExecutor(1, thread_name_prefix="runtime-store")
        """one thread for every store read: a SQLite connection serves only the thread that
        opened it, and doors ask from the threads of `asyncio.to_thread`, a new one each time"""
        self._keyrings = KeyringCache()
        self._keys: tuple[int, list[TokenKey]] | None = None
        self._documents: tuple[int, dict[str, Document | None]] = (-1, {})
        """the policy documents read so far, at the revision they were read"""

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
        with contextlib.suppress(RuntimeError):  # stopped before
            self._store_thread.submit(self._close_store).result()
        self._store_thread.shutdown()

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
                keys = self._reading(lambda store: list(store.token_keys()))
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
                revision, fleet = self._reading(_fleet_of)
            except StoreError as problem:
                raise Unavailable(f"the store cannot be read: {problem}") from None
            snapshot = self._snapshot_reaching(revision, timeout=5.0)
            if snapshot.revision == revision:
                return revision, preview(snapshot, fleet, proposal, now=self.state.clock.now())
        raise Unavailable("the store kept changing: the proposal could not be set against it")

    def bundle_proposal(self, bundle: object) -> BundleProposal:
        try:
            return BundleProposal(bundle_to_fleet(bundle))
        except BundleError as problem:
            raise ProposalError(str(problem)) from None

    def policy_document(self, policy: str) -> tuple[int, Document | None]:
        def read(store: FleetStore) -> tuple[int, Document | None]:
            with store.reading() as revision:
                revision_read, documents = self._documents
                if revision_read != revision:
                    documents = {}
                    self._documents = (revision, documents)
                if policy not in documents:
                    if len(documents) >= _DOCUMENTS_KEPT:
                        documents.clear()
                    documents[policy] = _read_document(store, policy)
                return revision, documents[policy]

        try:
            return self._reading(read)
        except StoreError as problem:
            raise Unavailable(f"the store cannot be read: {problem}") from None

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

    def _reading(self, read: Callable[[FleetStore], _T]) -> _T:
        """`read(store)` on the store's own thread, one read at a time."""

        def opened() -> _T:
            if self._store is None:
                self._store = open_store(self.state.store_url)
            return read(self._store)

        return self._store_thread.submit(opened).result()

    def _close_store(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

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


def _fleet_of(store: FleetStore) -> tuple[int, Fleet]:
    with store.reading() as revision:
        return revision, store.load_fleet()


_LEVEL = re.compile(r"(scp|rcp)\[([0-9]+)\]")
"""an organization node's policy: `NODE#scp[i]`, `NODE#rcp[i]`"""
_DOCUMENTS_KEPT = 1024
"""policy documents kept for one revision: a console shows the same few again and again"""


def _read_document(store: FleetStore, policy: str) -> Document | None:
    """The document of the policy a decision names (see `engine.build`: a managed policy's ARN,
    `OWNER_ARN#inline-name`, `ROLE_ARN#trust`, `REPOSITORY_ARN#policy`, `NODE#scp[i]`,
    `NODE#rcp[i]`, ``session policy of `ARN` ``); None for a name the store does not hold."""
    if policy.startswith("session policy of `") and policy.endswith("`"):
        session = store.load_session(policy[len("session policy of `") : -1])
        return session.policy if session is not None else None
    owner, hash_sign, part = policy.rpartition("#")
    if not hash_sign:
        managed = store.load_policy(policy) if ":policy/" in policy else None
        return managed.versions.get(managed.default_version) if managed is not None else None
    if owner.startswith("arn:") and ":repository/" in owner and part == "policy":
        repository = store.load_repository(owner)
        return repository.policy if repository is not None else None
    if owner.startswith("arn:"):
        return _read_inline(store, owner, part)
    level = _LEVEL.fullmatch(part)
    if level is not None:
        return _read_organization_policy(store, owner, level[1], int(level[2]))
    return None


def _read_inline(store: FleetStore, owner: str, name: str) -> Document | None:
    """An inline policy (or a role's trust policy) of the user, group or role `owner` (an ARN)."""
    fields = owner.split(":", 5)
    if len(fields) != 6 or fields[2] != "iam":
        return None
    account, resource = fields[4], fields[5]
    kind, _, path = resource.partition("/")
    entity_name = path.rsplit("/", 1)[-1]
    if kind == "user":
        user = store.load_user(account, entity_name)
        return user.inline.get(name) if user is not None else None
    if kind == "group":
        group = store.load_group(account, entity_name)
        return group.inline.get(name) if group is not None else None
    if kind == "role":
        role = store.load_role(account, entity_name)
        if role is None:
            return None
        if name == "trust" and name not in role.inline:
            return role.trust_policy
        return role.inline.get(name)
    return None


def _read_organization_policy(
    store: FleetStore, node_id: str, kind: str, index: int
) -> Document | None:
    organization = store.load_organization()
    if organization is None:
        return None
    pending = [organization.root]
    while pending:
        node = pending.pop()
        if node.id == node_id:
            documents = node.service_control if kind == "scp" else node.resource_control
            return documents[index] if index < len(documents) else None
        pending += node.children
    return None
