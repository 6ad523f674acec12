"""The snapshot every decision reads, kept fresh from the store by one background thread.

The thread owns its own store connection. It waits on the store for a revision past its snapshot
(SQLite polls every few milliseconds, PostgreSQL listens), at most `poll_interval` at a time, or
refreshes at once when nudged after a local write; then it reads what changed since its snapshot
and swaps in a rebuilt one. When the store cannot be reached it keeps serving the last snapshot
and `staleness` grows: the seconds since the thread last confirmed that its snapshot is the
store's newest (a wait or a refresh that the store answered), not since the last write. Past
`max_staleness` (when set) the snapshot is refused (`StaleSnapshotError`), never decided from.
A call waiting for a revision (`at_least`) waits on a future that the thread resolves when it
swaps that revision in: waiting costs nothing until then, however many calls wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc

from dockgate.v1 import errors_pb2
from dockgate_server.engine.cache import DecisionCache
from dockgate_server.engine.snapshot import Snapshot
from dockgate_server.service.clock import ServerClock
from dockgate_server.service.errors import ServiceError
from dockgate_server.service.follow import SnapshotFollower
from dockgate_server.store.port import open_store

__all__ = ["DecisionState", "StaleSnapshotError"]

log = logging.getLogger("dockgate.state")

_RETRY_CEILING = 0.5
"""seconds at most between two tries of a store that does not answer"""


class StaleSnapshotError(ServiceError):
    """The snapshot is older than `--max-staleness` allows: UNAVAILABLE, never a decision."""

    def __init__(self, staleness: float, bound: float) -> None:
        super().__init__(
            grpc.StatusCode.UNAVAILABLE,
            errors_pb2.STORE_UNAVAILABLE,
            f"--max-staleness {bound:g}: the store last answered {staleness:.1f} s ago:"
            " no decision from policy that old (ask another replica)",
            staleness=f"{staleness:.3f}",
        )


class DecisionState:
    def __init__(
        self,
        store_url: str | Path,
        *,
        poll_interval: float = 0.02,
        cache_size: int = 100_000,
        on_swap: Callable[[Snapshot, float], None] | None = None,
        on_poll: Callable[[], None] | None = None,
        clock: ServerClock | None = None,
        max_staleness: float | None = None,
    ) -> None:
        self.store_url = str(store_url)
        self.max_staleness = max_staleness
        """seconds without an answer from the store after which `snapshot` refuses; None: never"""
        self.clock = clock or ServerClock()
        """what session and login-token expiry is measured against"""
        self.poll_interval = poll_interval
        self.cache = DecisionCache(cache_size)
        self._on_swap = on_swap
        self._on_poll = on_poll
        self._nudge = threading.Event()
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._snapshot: Snapshot | None = None
        self._answered = time.monotonic()
        """when the store last answered the refresh thread"""
        self._failing = False
        self._waiters: dict[int, tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = {}
        """ticket → the revision a call waits for, its event loop and the future it awaits"""
        self._waiters_lock = threading.Lock()
        self._tickets = itertools.count()
        self._thread = threading.Thread(target=self._run, name="dockgate-refresh", daemon=True)

    @property
    def snapshot(self) -> Snapshot:
        """The snapshot to decide from; `StaleSnapshotError` past `max_staleness`."""
        snapshot = self._current()
        bound = self.max_staleness
        if bound is not None:
            staleness = time.monotonic() - self._answered
            if staleness > bound:
                raise StaleSnapshotError(staleness, bound)
        return snapshot

    def _current(self) -> Snapshot:
        """The snapshot however old (what the refresh thread builds on)."""
        snapshot = self._snapshot
        if snapshot is None:
            raise RuntimeError("the decision state has not started")
        return snapshot

    def start(self) -> None:
        """Build the first snapshot (in the refresh thread) and return once it is ready."""
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise self._failure

    def stop(self) -> None:
        self._stopping.set()
        self._nudge.set()
        self._thread.join(timeout=5)

    @property
    def staleness(self) -> float:
        """Seconds since the refresh thread last confirmed its snapshot is the store's newest:
        how old the snapshot may be (a poll interval or so while the store answers)."""
        return max(0.0, time.monotonic() - self._answered)

    @property
    def revision(self) -> int:
        """The revision of the snapshot held, however old (for logs and health, not decisions)."""
        return self._current().revision

    @property
    def too_stale(self) -> bool:
        """Past `max_staleness`: decisions are refused until the store answers again."""
        return self.max_staleness is not None and self.staleness > self.max_staleness

    @property
    def store_reachable(self) -> bool:
        """Whether the refresh thread's last look at the store succeeded."""
        return not self._failing

    def nudge(self) -> None:
        """Refresh now rather than at the next poll (after a write in this process)."""
        self._nudge.set()

    async def at_least(self, revision: int, timeout: float) -> Snapshot | None:
        """A snapshot at `revision` or newer, waiting up to `timeout`; None if not reached;
        `StaleSnapshotError` past `max_staleness`."""
        snapshot = self.snapshot
        if snapshot.revision >= revision:
            return snapshot
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        ticket = next(self._tickets)
        with self._waiters_lock:
            self._waiters[ticket] = (revision, loop, future)
        try:
            # a swap between the first look and the registration released no one: look again
            if self._current().revision < revision:
                self.nudge()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(future, timeout)
        finally:
            with self._waiters_lock:
                self._waiters.pop(ticket, None)
        snapshot = self.snapshot
        return snapshot if snapshot.revision >= revision else None

    @property
    def waiting(self) -> int:
        """Calls waiting for a revision not yet swapped in."""
        return len(self._waiters)

    def _release(self, revision: int) -> None:
        """Wake the calls waiting for `revision` or an older one (on the refresh thread)."""
        with self._waiters_lock:
            ready = [key for key, (wanted, _, _) in self._waiters.items() if wanted <= revision]
            woken = [self._waiters.pop(key) for key in ready]
        for _, loop, future in woken:
            with contextlib.suppress(RuntimeError):  # that loop has closed: no one to wake
                loop.call_soon_threadsafe(_wake, future)

    def _run(self) -> None:
        try:
            store = open_store(self.store_url)
            follower = SnapshotFollower(store)
            self._swap(follower.build, None)
            self._answered = time.monotonic()
        except BaseException as problem:  # reported to start(), which raises it
            self._failure = problem
            self._ready.set()
            return
        self._ready.set()
        retry = self.poll_interval
        with store:
            while not self._stopping.is_set():
                try:
                    if not self._nudge.is_set():
                        store.wait_for_change(self._current().revision, self.poll_interval)
                    self._nudge.clear()
                    if self._stopping.is_set():
                        break
                    self.clock.refresh()
                    self._refresh(follower)
                    self._answered = time.monotonic()
                    if self._failing:
                        self._failing = False
                        retry = self.poll_interval
                        log.info(
                            "store reachable again: snapshot refreshed",
                            extra={"fields": {"revision": self._current().revision}},
                        )
                    if self._on_poll is not None:
                        self._on_poll()
                except Exception:
                    # keep serving the last good snapshot; try again, a little less often each
                    # time up to a ceiling. One traceback per outage, not one per poll
                    if not self._failing:
                        log.exception(
                            "snapshot refresh failed: serving the last snapshot",
                            extra={"fields": {"revision": self._current().revision}},
                        )
                    self._failing = True
                    self._stopping.wait(retry)
                    retry = min(_RETRY_CEILING, max(retry, self.poll_interval) * 2)

    def _refresh(self, follower: SnapshotFollower) -> None:
        current = self._current()
        self._swap(lambda: follower.refresh(current), current)

    def _swap(self, build: Callable[[], Snapshot], current: Snapshot | None) -> None:
        started = time.perf_counter()
        snapshot = build()
        if snapshot is current:
            return
        self._snapshot = snapshot
        if self._waiters:
            self._release(snapshot.revision)
        if self._on_swap is not None:
            self._on_swap(snapshot, time.perf_counter() - started)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():  # a waiter that timed out has cancelled its future
        future.set_result(None)
