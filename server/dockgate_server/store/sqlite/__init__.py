"""The SQLite backend of the store port: one file, the embedded default."""

from __future__ import annotations

from pathlib import Path

from dockgate_server.store.errors import MissingStoreError
from dockgate_server.store.sqlite.writes import FleetWrites

__all__ = ["MissingStoreError", "SqliteStore"]


class SqliteStore(FleetWrites):
    """A fleet and its credentials in one SQLite file. One object per thread or process."""

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        super().__init__(path, create=create)

    def __enter__(self) -> SqliteStore:
        return self
