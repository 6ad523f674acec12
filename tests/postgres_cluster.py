"""The throw-away PostgreSQL cluster as pytest fixtures (the cluster is `bench.postgres_cluster`).

Use it as a pytest plugin (`pytest_plugins = ["tests.postgres_cluster"]` in the top conftest):
`postgres_cluster` is the session's cluster, `postgres_url` a fresh database in it for one test,
`own_postgres_cluster` a cluster of one test's own (for tests that stop and restart it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from dockgate_server.bench.postgres_cluster import PostgresCluster, server_bindir

__all__ = [
    "PostgresCluster",
    "own_postgres_cluster",
    "postgres_cluster",
    "postgres_url",
    "server_bindir",
]


# -- pytest fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """The session's cluster, started on first use and stopped at the end."""
    with _cluster() as cluster:
        yield cluster


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """A fresh, empty database of the session's cluster, for one test."""
    if not postgres_cluster.running:  # a test stopped it and failed before restarting it
        postgres_cluster.start()
    return postgres_cluster.create_database()


@pytest.fixture
def own_postgres_cluster() -> Iterator[PostgresCluster]:
    """A cluster of one test's own: it may stop, kill and restart it without disturbing others."""
    with _cluster() as cluster:
        yield cluster


@contextlib.contextmanager
def _cluster() -> Iterator[PostgresCluster]:
    try:
        cluster = PostgresCluster()
    except RuntimeError as problem:
        pytest.fail(str(problem), pytrace=False)
    with cluster:
        yield cluster
