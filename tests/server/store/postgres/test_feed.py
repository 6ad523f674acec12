"""The change feed: LISTEN wakes a replica on another's write; without it, the poll does."""

from __future__ import annotations

import threading

from dockgate_server.store.postgres import PostgresStore
from dockgate_server.store.postgres.feed import CHANNEL
from tests.postgres_cluster import PostgresCluster
from tests.server.store.postgres.fleets import repository

HANG_GUARD = 120
"""seconds after which a waiter that never woke fails the test instead of hanging it (not a
bound on how fast it wakes)"""


def _wait_in_thread(store: PostgresStore, revision: int) -> tuple[threading.Thread, list[int]]:
    woke: list[int] = []
    thread = threading.Thread(
        target=lambda: woke.append(store.wait_for_change(revision, timeout=HANG_GUARD * 10)),
        daemon=True,
    )
    thread.start()
    return thread, woke


def test_a_write_on_one_replica_notifies_on_commit(
    postgres_cluster: PostgresCluster, postgres_url: str
) -> None:
    with (
        PostgresStore(postgres_url) as writer,
        postgres_cluster.connect(postgres_url.rsplit("/", 1)[1]) as listener,
    ):
        listener.execute(f"LISTEN {CHANNEL}")
        change = writer.put_repository(repository("app"))
        heard = next(listener.notifies(timeout=HANG_GUARD, stop_after=1))
        assert (heard.channel, heard.payload) == (CHANNEL, str(change.revision))


def test_listen_wakes_a_waiting_replica(postgres_url: str) -> None:
    # the poll is an hour: only the notification can wake the waiter
    with (
        PostgresStore(f"{postgres_url}?poll=3600") as waiter,
        PostgresStore(postgres_url) as writer,
    ):
        thread, woke = _wait_in_thread(waiter, 0)
        writer.put_repository(repository("app"))
        thread.join(HANG_GUARD)
        assert woke == [1]


def test_with_listen_off_the_poll_finds_the_write(postgres_url: str) -> None:
    with (
        PostgresStore(f"{postgres_url}?listen=off&poll=0.05") as waiter,
        PostgresStore(f"{postgres_url}?listen=off") as writer,
    ):
        thread, woke = _wait_in_thread(waiter, 0)
        writer.put_repository(repository("app"))
        thread.join(HANG_GUARD)
        assert woke == [1]
        assert waiter.changes_since(0) is not None


def test_with_listen_off_no_notification_is_sent(
    postgres_cluster: PostgresCluster, postgres_url: str
) -> None:
    with (
        PostgresStore(f"{postgres_url}?listen=off") as quiet,
        PostgresStore(postgres_url) as loud,
        postgres_cluster.connect(postgres_url.rsplit("/", 1)[1]) as listener,
    ):
        listener.execute(f"LISTEN {CHANNEL}")
        quiet.put_repository(repository("first"))
        loud.put_repository(repository("second"))
        # notifications arrive in commit order: the first one heard is the second write's
        heard = next(listener.notifies(timeout=HANG_GUARD, stop_after=1))
        assert heard.payload == "2"


def test_a_waiter_already_behind_returns_at_once(postgres_url: str) -> None:
    with PostgresStore(postgres_url) as store:
        store.put_repository(repository("app"))
        assert store.wait_for_change(0, timeout=HANG_GUARD) == 1
        assert store.wait_for_change(1, timeout=0) == 1
