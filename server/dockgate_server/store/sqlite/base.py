"""The SQLite connection, its schema migrations, the revision and the change log.

WAL journal with `synchronous=FULL`: an acknowledged write survives a crash or power loss, and
readers never block the writer. Every write runs in one transaction that raises the revision by
one and records what it touched, so a refused or interrupted write leaves the store exactly at its
previous revision.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dockgate_server.private_files import make_private_dirs, tighten
from dockgate_server.store.errors import (
    Conflict,
    MissingStoreError,
    NotFound,
    StoreError,
    Unavailable,
)
from dockgate_server.store.model import CHANGES_KEPT, Change
from dockgate_server.store.rows import change_from_row
from dockgate_server.store.schema import MIGRATIONS, SCHEMA_VERSION
from dockgate_server.store.touched import CHANGE_COLUMNS, Touched

__all__ = ["SqliteBase"]

_POLL_STEP = 0.02
"""seconds between two looks at the revision while waiting for a change (one cheap read)"""


class SqliteBase:
    """A fleet in one SQLite file. Not shared across threads: open one per thread or process."""

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        """Open the store at `path`; with `create`, make it (and its folders, mode 0700) first.

        Without `create` a missing store raises `MissingStoreError` and nothing is made: the
        read-only commands must not leave an empty store (or its folders) behind a typo.
        """
        self.path = Path(path)
        self._db = _connect(self.path, create=create)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as problem:  # not a database, or one that is damaged
            self._db.close()
            raise StoreError(f"store `{self.path}`: cannot open: {problem}") from None
        except BaseException:
            self._db.close()
            raise

    def describe(self) -> str:
        return str(self.path)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SqliteBase:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- schema and revision ----------------------------------------------------------------

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"store `{self.path}` has schema {version}, newer than this dockgate ({SCHEMA_VERSION})"
            )
        for number in range(version, SCHEMA_VERSION):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for statement in _statements(MIGRATIONS[number]):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {number + 1}")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    @property
    def revision(self) -> int:
        with self._failures():
            row = self._db.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()
        return int(row[0])

    def wait_for_change(self, revision: int, timeout: float) -> int:
        """SQLite has no notifications: look at the revision every `_POLL_STEP` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            current = self.revision
            left = deadline - time.monotonic()
            if current > revision or left <= 0:
                return current
            time.sleep(min(_POLL_STEP, left))

    @contextmanager
    def _write(self) -> Iterator[Touched]:
        """One transaction that raises the revision by one, or changes nothing at all."""
        touched = Touched()
        with self._failures():
            self._db.execute("BEGIN IMMEDIATE")
        try:
            with self._failures():
                yield touched
                self._db.execute(
                    "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'revision'"
                )
                touched.revision = revision = self.revision
                self._db.execute(
                    f"INSERT INTO changes ({CHANGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    touched.log_row(),
                )
                self._db.execute(
                    "DELETE FROM changes WHERE revision <= ?", (revision - CHANGES_KEPT,)
                )
                self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def _changed(self, touched: Touched) -> Change:
        return touched.change(self.revision)

    @contextmanager
    def _failures(self) -> Iterator[None]:
        """SQLite's own errors as the port's: a busy file is a conflict, the rest unavailable."""
        try:
            yield
        except sqlite3.OperationalError as problem:
            text = str(problem)
            if "locked" in text or "busy" in text:
                raise Conflict(f"store `{self.path}`: {text}: another writer holds it") from None
            raise Unavailable(f"store `{self.path}`: {text}") from None

    @contextmanager
    def reading(self) -> Iterator[int]:
        """A consistent view across several reads; yields the revision it sees. Re-entrant."""
        if self._db.in_transaction:
            yield self.revision
            return
        with self._failures():
            self._db.execute("BEGIN")
        try:
            yield self.revision
        finally:
            if self._db.in_transaction:
                self._db.execute("COMMIT")

    def changes_since(self, revision: int) -> list[Change] | None:
        """What every write after `revision` touched, in order; None when the log no longer
        reaches back that far (then only a full rebuild is right)."""
        with self.reading() as current:
            rows = self._db.execute(
                f"SELECT {CHANGE_COLUMNS} FROM changes WHERE revision > ? ORDER BY revision",
                (revision,),
            ).fetchall()
        if current > revision and (not rows or rows[0][0] != revision + 1):
            return None
        return [change_from_row(row) for row in rows]

    @staticmethod
    def _require(cursor: sqlite3.Cursor, what: str) -> None:
        if cursor.rowcount == 0:
            raise NotFound(f"{what} does not exist")


def _connect(path: Path, *, create: bool) -> sqlite3.Connection:
    """A connection to the store file, which only its owner may read or write.

    The file is made 0600 before SQLite opens it: SQLite gives its `-wal` and `-shm` files the
    mode of the database file, so they are 0600 too (SQLite alone would make all three 0644).
    A store an older version left readable is tightened when it is ours.
    """
    try:
        if create:
            make_private_dirs(path.parent)
            with contextlib.suppress(FileExistsError):
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        elif not path.is_file():
            raise MissingStoreError(f"store `{path}` does not exist")
        for name in (path, _sibling(path, "-wal"), _sibling(path, "-shm")):
            with contextlib.suppress(FileNotFoundError):
                tighten(name, 0o600)
        # mode=rw: an existing file only; SQLite must not make one where the check above saw one
        uri = f"file:{urllib.parse.quote(str(path.absolute()))}?mode=rw"
        return sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30)
    except (OSError, sqlite3.Error) as problem:
        if not create and not path.exists():
            raise MissingStoreError(f"store `{path}` does not exist") from None
        reason = problem.strerror if isinstance(problem, OSError) else str(problem)
        raise StoreError(f"store `{path}`: cannot open: {reason}") from None


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]
