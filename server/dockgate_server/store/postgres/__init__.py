"""The PostgreSQL backend of the store port: one database that any number of replicas share."""

from __future__ import annotations

from dockgate_server.store.port import describe_url
from dockgate_server.store.postgres.writes import FleetWrites

__all__ = ["PostgresStore"]


class PostgresStore(FleetWrites):
    """A fleet and its credentials in one PostgreSQL database, behind a connection pool.

    `url` is `postgresql://USER[:PASSWORD]@HOST:PORT/DB`, with libpq's own options and
    Dockgate's: `listen=off` (no LISTEN/NOTIFY: for databases without them, the revision is
    polled), `poll=SECONDS` (how often; 1 by default), `pool=N` (connections, 4 by default),
    `timeout=SECONDS` (to connect or get a connection before `Unavailable`, 5 by default).
    """

    def __init__(self, url: str, *, create: bool = True) -> None:
        super().__init__(url, create=create, shown=describe_url(url))

    def __enter__(self) -> PostgresStore:
        return self
