"""The PostgreSQL store's spine: opening it, the revision, pinned reads, writes, the change log.

A write's first statement raises the revision (`UPDATE meta … RETURNING`): the row lock it takes
makes every other writer, on this replica or any other, wait until it commits or rolls back, so
two writers never get the same revision and neither loses its write. Checks that read the store
(does the group still have members, is the policy attached) run after that lock, so no writer
slips in between a check and the write it allows. The change row and the `NOTIFY` go in the same
transaction: a replica that hears of revision N can read N's change.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dockgate_server.store.errors import StoreError
from dockgate_server.store.model import CHANGES_KEPT, Change
from dockgate_server.store.postgres.connection import Connections, Cursor, parse_url
from dockgate_server.store.postgres.feed import CHANNEL, ChangeFeed
from dockgate_server.store.postgres.schema import migrate
from dockgate_server.store.rows import change_from_row
from dockgate_server.store.touched import CHANGE_COLUMNS, Touched

__all__ = ["PostgresBase"]


class PostgresBase:
    """A fleet in one PostgreSQL database, shared by any number of replicas.

    Thread-safe: each thread's transaction runs on its own pooled connection.
    """

    def __init__(self, url: str, *, create: bool = True, shown: str | None = None) -> None:
        """Open the store at `url` (`postgresql://USER@HOST:PORT/DB?listen=off&poll=1`) and
        bring its schema up to date; without `create` a database with no schema is refused."""
        settings = parse_url(url, shown or url)
        self._connections = Connections(settings)
        self._feed = ChangeFeed(self._connections, lambda: self.revision)
        try:
            migrate(self._connections, create=create)
        except BaseException:
            self._connections.close()
            raise

    def describe(self) -> str:
        return self._connections.settings.shown

    def close(self) -> None:
        self._feed.close()
        self._connections.close()

    def __enter__(self) -> PostgresBase:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- revision and transactions ----------------------------------------------------------

    @property
    def revision(self) -> int:
        if self._connections.in_transaction:
            return _revision(self._connections.cursor())
        with self._connections.transaction("BEGIN READ ONLY") as cursor:
            return _revision(cursor)

    @contextmanager
    def reading(self) -> Iterator[int]:
        """Every read inside sees one snapshot of the database; yields its revision. Re-entrant
        (inside a write it sees the write's own rows)."""
        if self._connections.in_transaction:
            yield _revision(self._connections.cursor())
            return
        with self._connections.transaction(
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"
        ) as cursor:
            yield _revision(cursor)

    @contextmanager
    def _reads(self) -> Iterator[Cursor]:
        """A cursor on this thread's transaction, or on a read-only one of its own."""
        if self._connections.in_transaction:
            yield self._connections.cursor()
            return
        with self._connections.transaction(
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"
        ) as cursor:
            yield cursor

    @contextmanager
    def _write(self) -> Iterator[Touched]:
        """One transaction that raises the revision by one, or changes nothing at all."""
        if self._connections.in_transaction:
            raise StoreError(f"store `{self.describe()}`: a write inside a read or another write")
        with self._connections.transaction("BEGIN") as cursor:
            row = cursor.execute(
                "UPDATE meta SET value = value + 1 WHERE key = 'revision' RETURNING value"
            ).fetchone()
            assert row is not None  # the revision row is made with the schema
            touched = Touched(int(row[0]))
            yield touched
            cursor.execute(
                f"INSERT INTO changes ({CHANGE_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                touched.log_row(),
            )
            cursor.execute(
                "DELETE FROM changes WHERE revision <= %s", (touched.revision - CHANGES_KEPT,)
            )
            if self._connections.settings.listen:
                # delivered on commit, never for a write that rolls back
                cursor.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(touched.revision)))

    @staticmethod
    def _changed(touched: Touched) -> Change:
        return touched.change(touched.revision)

    # -- the change feed --------------------------------------------------------------------

    def changes_since(self, revision: int) -> list[Change] | None:
        """What every write after `revision` touched, in order; None when the log no longer
        reaches back that far (then only a full rebuild is right)."""
        with self.reading() as current, self._reads() as cursor:
            rows = cursor.execute(
                f"SELECT {CHANGE_COLUMNS} FROM changes WHERE revision > %s ORDER BY revision",
                (revision,),
            ).fetchall()
        if current > revision and (not rows or rows[0][0] != revision + 1):
            return None
        return [change_from_row(row) for row in rows]

    def wait_for_change(self, revision: int, timeout: float) -> int:
        """Block until the store is past `revision` or `timeout` seconds pass; the newest
        revision then. LISTEN wakes it at once; without it, it polls."""
        return self._feed.wait(revision, timeout)


def _revision(cursor: Cursor) -> int:
    row = cursor.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()
    assert row is not None  # the revision row is made with the schema
    return int(row[0])
