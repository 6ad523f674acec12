"""Connections to PostgreSQL: the URL's options, a pool, one pinned transaction per thread.

PostgreSQL's own errors become the port's here and only here: a server that cannot be reached
(down, restarting, a dropped connection, no free connection in time) is `Unavailable`; a
serialization failure is a `Conflict`; a value the database refuses is `Refused`. A pool whose
connections broke is dropped whole and a new one is opened on the next call, once a direct
connection shows the server answers again: a store object outlives a restart of its server.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import psycopg_pool

from dockgate_server.store.errors import Conflict, Refused, StoreError, Unavailable

__all__ = ["Connections", "Cursor", "Settings", "parse_url"]

Cursor = psycopg.Cursor[tuple[Any, ...]]

_OPTIONS = ("listen", "poll", "pool", "timeout")
"""query options Dockgate reads itself; every other one goes to libpq (`sslmode=…`, …)"""


@dataclass(frozen=True, slots=True)
class Settings:
    """What a `postgresql://` URL says: where the server is and how Dockgate talks to it."""

    conninfo: str
    """the URL without Dockgate's own options, as libpq takes it"""
    shown: str
    """the URL as messages name it: no password"""
    listen: bool = True
    """LISTEN/NOTIFY for prompt change feeds; off for databases without it (CockroachDB)"""
    poll: float = 1.0
    """seconds between two looks at the revision while waiting for a change"""
    pool: int = 4
    """connections at most in the pool (the change listener has one more of its own)"""
    timeout: float = 5.0
    """seconds to connect, or to wait for a free connection, before `Unavailable`"""


def parse_url(url: str, shown: str) -> Settings:
    """The settings of `url`: `?listen=off`, `poll=SECONDS`, `pool=N`, `timeout=SECONDS`."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    ours = {key: value for key, value in query if key in _OPTIONS}
    rest = [(key, value) for key, value in query if key not in _OPTIONS]
    where = f"store `{shown}`"
    listen = ours.get("listen", "on")
    if listen not in ("on", "off"):
        raise StoreError(f"{where}: option `listen` must be `on` or `off`, not `{listen}`")
    poll = _number(ours, "poll", 1.0, where, low=0.01)
    pool = int(_number(ours, "pool", 4, where, low=1, whole=True))
    timeout = _number(ours, "timeout", 5.0, where, low=0.1)
    conninfo = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(rest)))
    return Settings(conninfo, shown, listen == "on", poll, pool, timeout)


def _number(
    options: dict[str, str],
    key: str,
    default: float,
    where: str,
    *,
    low: float,
    whole: bool = False,
) -> float:
    text = options.get(key)
    if text is None:
        return default
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        value = None
    if value is None or not value >= low or value == float("inf"):
        kind = "a whole number" if whole else "a number of seconds"
        raise StoreError(f"{where}: option `{key}` must be {kind} of at least {low}, not `{text}`")
    return value


class _Pinned(threading.local):
    """The connection a thread's open transaction runs on (reads inside it reuse it)."""

    connection: psycopg.Connection[tuple[Any, ...]] | None = None
    writing: bool = False


class Connections:
    """A pool of autocommit connections and the transactions run on them, thread by thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._pool: psycopg_pool.ConnectionPool | None = None
        self._pinned = _Pinned()
        self._closed = False

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        """A connection of its own, outside the pool (the change listener's)."""
        with self.failures():
            return psycopg.connect(
                self.settings.conninfo,
                autocommit=True,
                connect_timeout=max(1, round(self.settings.timeout)),
            )

    # -- transactions -----------------------------------------------------------------------

    @property
    def in_transaction(self) -> bool:
        return self._pinned.connection is not None

    @property
    def writing(self) -> bool:
        return self._pinned.writing

    def cursor(self) -> Cursor:
        """A cursor on this thread's open transaction."""
        connection = self._pinned.connection
        if connection is None:
            raise StoreError(f"store `{self.settings.shown}`: no transaction is open")
        return connection.cursor()

    @contextmanager
    def transaction(self, begin: str) -> Iterator[Cursor]:
        """Run the block in one transaction (`begin` opens it) on a pooled connection pinned
        to this thread; commit when it ends, roll back when it raises."""
        with self.failures(), self._borrow() as connection:
            self._pinned.connection = connection
            self._pinned.writing = "READ ONLY" not in begin
            try:
                connection.execute(begin)
                try:
                    yield connection.cursor()
                except BaseException:
                    if not connection.broken:
                        connection.execute("ROLLBACK")
                    raise
                connection.execute("COMMIT")
            finally:
                self._pinned.connection = None
                self._pinned.writing = False

    @contextmanager
    def _borrow(self) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        pool = self._open_pool()
        connection = self._take(pool)
        # a connection idle in the pool may have died with a server restart: look first, so the
        # first call after a restart works instead of failing on a stale connection
        try:
            connection.execute("SELECT 1")
        except psycopg.OperationalError:
            pool.putconn(connection)
            self._drop_pool(pool)
            pool = self._open_pool()
            connection = self._take(pool)
        try:
            yield connection
        finally:
            broken = connection.broken
            pool.putconn(connection)
            if broken:
                self._drop_pool(pool)

    def _take(self, pool: psycopg_pool.ConnectionPool) -> psycopg.Connection[tuple[Any, ...]]:
        try:
            return pool.getconn(timeout=self.settings.timeout)
        except psycopg_pool.PoolTimeout:
            raise Unavailable(
                f"store `{self.settings.shown}`: no free connection within"
                f" {self.settings.timeout:g} s"
            ) from None

    def _open_pool(self) -> psycopg_pool.ConnectionPool:
        with self._lock:
            if self._closed:
                raise StoreError(f"store `{self.settings.shown}`: closed")
            if self._pool is not None:
                return self._pool
            # a direct connection first: when the server is down this fails at once, where a
            # pool would keep retrying in the background until its timeout
            self.connect().close()
            self._pool = psycopg_pool.ConnectionPool(
                self.settings.conninfo,
                min_size=1,
                max_size=self.settings.pool,
                kwargs={
                    "autocommit": True,
                    "connect_timeout": max(1, round(self.settings.timeout)),
                },
                timeout=self.settings.timeout,
                name="dockgate-store",
                open=True,
            )
            return self._pool

    def _drop_pool(self, pool: psycopg_pool.ConnectionPool) -> None:
        """Forget a pool whose connections broke (the server went away); close it aside."""
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.close(timeout=0)

    # -- errors -----------------------------------------------------------------------------

    @contextmanager
    def failures(self) -> Iterator[None]:
        """PostgreSQL's errors as the port's typed errors."""
        where = f"store `{self.settings.shown}`"
        try:
            yield
        except (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected) as problem:
            raise Conflict(f"{where}: {_reason(problem)}: another writer got there first") from None
        except (psycopg.DataError, psycopg.IntegrityError) as problem:
            raise Refused(f"{where}: the database refused a value: {_reason(problem)}") from None
        except (psycopg.OperationalError, psycopg.InterfaceError) as problem:
            raise Unavailable(f"{where}: unavailable: {_reason(problem)}") from None
        except psycopg_pool.PoolTimeout:
            raise Unavailable(f"{where}: unavailable: no connection could be made") from None


def _reason(problem: psycopg.Error) -> str:
    """The first line of the server's (or libpq's) message, without its own trailing period."""
    lines = str(problem).strip().splitlines()
    return (lines[0] if lines else type(problem).__name__).rstrip(".")
