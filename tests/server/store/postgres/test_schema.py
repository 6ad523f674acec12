"""The PostgreSQL schema: made from an empty database, by several replicas at once, never twice."""

from __future__ import annotations

import threading

import pytest

from dockgate_server.store.errors import MissingStoreError, StoreError
from dockgate_server.store.model import SigningKey
from dockgate_server.store.postgres import PostgresStore
from dockgate_server.store.postgres.schema import SCHEMA_VERSION
from tests.postgres_cluster import PostgresCluster


def _tables(cluster: PostgresCluster, url: str) -> set[str]:
    with cluster.connect(url.rsplit("/", 1)[1]) as connection:
        rows = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    return {str(row[0]) for row in rows}


def test_migrates_an_empty_database(postgres_cluster: PostgresCluster, postgres_url: str) -> None:
    with PostgresStore(postgres_url) as store:
        assert store.revision == 0
        assert store.changes_since(0) == []
    assert {"schema_version", "meta", "users", "changes", "sessions"} <= _tables(
        postgres_cluster, postgres_url
    )
    with postgres_cluster.connect(postgres_url.rsplit("/", 1)[1]) as connection:
        row = connection.execute("SELECT version FROM schema_version").fetchone()
    assert row == (SCHEMA_VERSION,)


def test_opening_again_keeps_the_data(postgres_url: str) -> None:
    with PostgresStore(postgres_url) as store:
        store.add_signing_key(_key())
    with PostgresStore(postgres_url) as store:
        assert store.revision == 1
        assert [key.key_id for key in store.signing_keys()] == ["k1"]


def test_without_create_an_empty_database_is_refused_and_left_empty(
    postgres_cluster: PostgresCluster, postgres_url: str
) -> None:
    with pytest.raises(MissingStoreError, match="no dockgate schema"):
        PostgresStore(postgres_url, create=False)
    assert _tables(postgres_cluster, postgres_url) == set()


def test_replicas_starting_at_once_migrate_once(postgres_url: str) -> None:
    problems: list[BaseException] = []
    stores: list[PostgresStore] = []
    start = threading.Barrier(4)

    def open_one() -> None:
        start.wait()
        try:
            stores.append(PostgresStore(postgres_url))
        except BaseException as problem:
            problems.append(problem)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert problems == []
        assert [store.revision for store in stores] == [0, 0, 0, 0]
    finally:
        for store in stores:
            store.close()


def test_a_newer_schema_is_refused(postgres_cluster: PostgresCluster, postgres_url: str) -> None:
    PostgresStore(postgres_url).close()
    with postgres_cluster.connect(postgres_url.rsplit("/", 1)[1]) as connection:
        connection.execute("UPDATE schema_version SET version = version + 1")
    with pytest.raises(StoreError, match=f"newer than this dockgate \\({SCHEMA_VERSION}\\)"):
        PostgresStore(postgres_url)


def _key() -> SigningKey:
    return SigningKey("k1", b"secret", 1.0)
