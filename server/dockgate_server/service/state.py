"""The snapshot every decision reads, kept fresh from the store by one background thread.

The thread owns its own SQLite connection. Every `poll_interval` (or at once when nudged after a
local write) it asks the store for the changes since its snapshot and swaps in a rebuilt one: a
write made by any process is visible here within one poll interval. A call waiting for a revision
(`at_least`) waits on a future that the thread resolves when it swaps that revision in: waiting
costs nothing until then, however many calls wait.
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

from dockgate_server.engine.cache import DecisionCache
from dockgate_server.engine.snapshot import Snapshot, SnapshotBuilder
from dockgate_server.service.clock import ServerClock
from dockgate_server.store.sqlite import Store

__all__ = ["DecisionState"]

log = logging.getLogger("dockgate.state")


class DecisionState:
    def __init__(
        self,
        store_path: Path,
        *,
        poll_interval: float = 0.02,
        cache_size: int = 100_000,
        on_swap: Callable[[Snapshot, float], None] | None = None,
        on_poll: Callable[[], None] | None = None,
        clock: ServerClock | None = None,
    ) -> None:
        self.store_path = store_path
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
        self._waiters: dict[int, tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = {}
        """ticket → the revision a call waits for, its event loop and the future it awaits"""
        self._waiters_lock = threading.Lock()
        self._tickets = itertools.count()
        self._thread = threading.Thread(target=self._run, name="dockgate-refresh", daemon=True)

    @property
    def snapshot(self) -> Snapshot:
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

    def nudge(self) -> None:
        """Refresh now rather than at the next poll (after a write in this process)."""
        self._nudge.set()

    async def at_least(self, revision: int, timeout: float) -> Snapshot | None:
        """A snapshot at `revision` or newer, waiting up to `timeout`; None if not reached."""
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
            if self.snapshot.revision < revision:
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
            store = Store(self.store_path)
            builder = SnapshotBuilder(store)
            self._swap(builder.build, None)
        except BaseException as problem:  # reported to start(), which raises it
            self._failure = problem
            self._ready.set()
            return
        self._ready.set()
        with store:
            while not self._stopping.is_set():
                self._nudge.wait(self.poll_interval)
                self._nudge.clear()
                if self._stopping.is_set():
                    break
                try:
                    self.clock.refresh()
                    self._refresh(builder)
                    if self._on_poll is not None:
                        self._on_poll()
                except Exception:
                    # keep serving the last good snapshot; the next poll tries again
                    log.exception("snapshot refresh failed")

    def _refresh(self, builder: SnapshotBuilder) -> None:
        current = self.snapshot
        self._swap(lambda: builder.refresh(current), current)

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
