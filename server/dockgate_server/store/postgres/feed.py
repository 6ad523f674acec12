"""Waiting for another replica's write: LISTEN on a connection of its own, a slow poll beside it.

Every write sends `NOTIFY dockgate_changes` inside its transaction, so PostgreSQL delivers it on
commit. A waiter sleeps on the listening connection until a notification or the poll interval,
then reads the revision itself: a notification only wakes it, so one that is lost (a reconnect, a
database without LISTEN) costs at most one poll interval, never a missed write.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

from dockgate_server.store.postgres.connection import Connections

__all__ = ["CHANNEL", "ChangeFeed"]

CHANNEL = "dockgate_changes"


class ChangeFeed:
    """Waits for the revision to pass a number; one listening connection for all its waiters."""

    def __init__(self, connections: Connections, read_revision: Callable[[], int]) -> None:
        self._connections = connections
        self._read_revision = read_revision
        self._settings = connections.settings
        self._listener: psycopg.Connection[tuple[Any, ...]] | None = None
        # one thread listens at a time; the others wait on the condition for its news
        self._condition = threading.Condition()
        self._listening = False

    def close(self) -> None:
        with self._condition:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()

    def wait(self, revision: int, timeout: float) -> int:
        """The newest revision once it is past `revision`, or when `timeout` seconds pass."""
        deadline = time.monotonic() + timeout
        while True:
            current = self._read_revision()
            left = deadline - time.monotonic()
            if current > revision or left <= 0:
                return current
            self._sleep(min(left, self._settings.poll))

    def _sleep(self, seconds: float) -> None:
        """Until a notification arrives (LISTEN on) or `seconds` pass."""
        if not self._settings.listen:
            time.sleep(seconds)
            return
        with self._condition:
            if self._listening:
                self._condition.wait(seconds)
                return
            self._listening = True
            listener = self._listener
        try:
            if listener is None or listener.closed:
                listener = self._connections.connect()
                try:
                    with self._connections.failures():
                        listener.execute(f"LISTEN {CHANNEL}")
                except BaseException:
                    listener.close()
                    raise
                with self._condition:
                    self._listener = listener
                # a write may have committed while the listener was not there: look again first
                return
            try:
                for _ in listener.notifies(timeout=seconds, stop_after=1):
                    pass
            except psycopg.OperationalError:
                # the server went away (or restarted): drop the listener; the next look at the
                # revision says `Unavailable` while it is down, and listens anew once it is back
                listener.close()
                with self._condition:
                    self._listener = None
        finally:
            with self._condition:
                self._listening = False
                self._condition.notify_all()
