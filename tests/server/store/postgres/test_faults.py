"""PostgreSQL going away: every call says `Unavailable`, the same store works again once it is
back, and an import cut off half-way leaves nothing of itself on any replica."""

from __future__ import annotations

import re
import threading

import pytest

from dockgate_server.store.errors import StoreError, Unavailable
from dockgate_server.store.model import Fleet
from dockgate_server.store.postgres import PostgresStore
from tests.postgres_cluster import PostgresCluster
from tests.server.store.postgres.fleets import big_fleet, realistic_fleet, repository

HANG_GUARD = 120
"""seconds after which a thread that never finished fails the test instead of hanging it"""


def test_a_stopped_server_is_unavailable_and_a_restarted_one_serves_again(
    own_postgres_cluster: PostgresCluster,
) -> None:
    url = own_postgres_cluster.create_database()
    with PostgresStore(f"{url}?timeout=2") as store, PostgresStore(url) as writer:
        store.put_repository(repository("before"))
        # a first wait connects its listener, which the stop then breaks
        assert store.wait_for_change(1, timeout=0.01) == 1
        own_postgres_cluster.stop()
        for call in (
            lambda: store.revision,
            store.load_fleet,
            lambda: store.changes_since(0),
            lambda: store.put_repository(repository("during")),
            lambda: store.wait_for_change(1, timeout=1),
            store.load_credentials,
        ):
            with pytest.raises(Unavailable, match=f"^store `{re.escape(url)}\\?timeout=2`: "):
                call()
        own_postgres_cluster.start()
        assert store.revision == 1
        assert [r.name for r in store.load_fleet().repositories] == ["before"]
        assert store.put_repository(repository("after")).revision == 2
        # the listener reconnects too: a write on another replica wakes it again
        assert store.wait_for_change(2, timeout=0) == 2
        woke: list[int] = []
        thread = threading.Thread(
            target=lambda: woke.append(store.wait_for_change(2, timeout=HANG_GUARD * 10)),
            daemon=True,
        )
        thread.start()
        writer.put_repository(repository("from-another"))
        thread.join(HANG_GUARD)
        assert woke == [3]


def test_a_store_cannot_be_opened_while_the_server_is_down(
    own_postgres_cluster: PostgresCluster,
) -> None:
    url = own_postgres_cluster.create_database()
    own_postgres_cluster.stop()
    with pytest.raises(Unavailable, match=f"^store `{re.escape(url)}`: unavailable: "):
        PostgresStore(url)


def test_an_import_cut_off_half_way_is_wholly_absent(postgres_cluster: PostgresCluster) -> None:
    url = postgres_cluster.create_database()
    database = url.rsplit("/", 1)[1]
    first = realistic_fleet()
    with PostgresStore(url) as store, PostgresStore(url) as replica:
        store.import_fleet(first)
        before = store.load_fleet()
        outcome: list[BaseException | int] = []

        def import_big() -> None:
            try:
                outcome.append(store.import_fleet(big_fleet(4000, 2000)).revision)
            except BaseException as problem:
                outcome.append(problem)

        thread = threading.Thread(target=import_big, daemon=True)
        thread.start()
        # end the importing backend once it is writing rows, from a connection of its own
        with postgres_cluster.connect(database) as killer:
            killed = False
            while thread.is_alive() and not killed:
                row = killer.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()"
                    " AND backend_xid IS NOT NULL AND query LIKE 'INSERT INTO users%%'",
                    (database,),
                ).fetchone()
                killed = row is not None and bool(row[0])
        thread.join(HANG_GUARD)
        assert killed, "the import finished before it could be cut off"
        assert len(outcome) == 1 and isinstance(outcome[0], Unavailable)
        for reader in (replica, store):
            assert reader.revision == 1
            assert reader.load_fleet() == before
            assert [c.revision for c in reader.changes_since(0) or []] == [1]
        # the same store writes again
        assert store.import_fleet(Fleet(repositories=(repository("after"),))).revision == 2


def test_the_server_killed_during_an_import_keeps_it_whole_or_absent(
    own_postgres_cluster: PostgresCluster,
) -> None:
    url = own_postgres_cluster.create_database()
    with PostgresStore(url) as store:
        store.import_fleet(realistic_fleet())
        before = store.load_fleet()
        outcome: list[BaseException | int] = []

        def import_big() -> None:
            try:
                outcome.append(store.import_fleet(big_fleet(3000, 1000)).revision)
            except StoreError as problem:
                outcome.append(problem)

        thread = threading.Thread(target=import_big, daemon=True)
        thread.start()
        # kill the server once the import is writing its rows, inside its transaction
        own_postgres_cluster.crash_during_insert(thread.is_alive)
        thread.join(HANG_GUARD)
        own_postgres_cluster.start()
        assert len(outcome) == 1
        fleet = store.load_fleet()
        if isinstance(outcome[0], int):  # it committed before the kill: wholly there
            assert store.revision == 2 and len(fleet.users) == len(before.users) + 3000
        else:
            assert isinstance(outcome[0], Unavailable)
            assert store.revision == 1 and fleet == before
