"""The store port's token-signing keys, run over every backend: rotation retires the current key,
keeps the retired ones until they are forgotten, raises the revision once, and every connection
(every replica) reads the same keys."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from dockgate_server.store.model import TokenKey
from dockgate_server.store.port import FleetStore, Refused, open_store
from dockgate_server.store.schema import MIGRATIONS
from tests.server.store.conftest import StoreFactory

PEM = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMG…\n-----END PRIVATE KEY-----\n"


def key(number: int, created_at: float, algorithm: str = "ES256") -> TokenKey:
    return TokenKey(
        f"KEY{number}:AAAA:BBBB",
        algorithm,
        f"{PEM}{number}",
        f"-----BEGIN CERTIFICATE-----\ncert {number}\n-----END CERTIFICATE-----\n",
        created_at,
    )


def test_a_new_store_has_no_token_key(store: FleetStore) -> None:
    assert store.token_keys() == []


def test_a_rotation_stores_the_key_whole_and_raises_the_revision_once(store: FleetStore) -> None:
    change = store.rotate_token_key(key(1, 1_000.0, "RS256"), grace=10_000.0)
    assert change.revision == 1 == store.revision
    assert change.credentials  # every process serving tokens learns of the new key
    assert store.token_keys() == [key(1, 1_000.0, "RS256")]
    assert store.changes_since(0) == [change]


def test_a_rotation_retires_the_current_key_which_stays_trusted_for_the_grace(
    store: FleetStore,
) -> None:
    store.rotate_token_key(key(1, 1_000.0), grace=0.0)  # there is no key to retire yet
    store.rotate_token_key(key(2, 2_000.0), grace=10_000.0)  # key 1: trusted until 12000
    store.rotate_token_key(key(3, 3_000.0), grace=700.0)  # key 2: until 3700
    keys = store.token_keys()
    assert [k.key_id for k in keys] == [key(1, 0).key_id, key(2, 0).key_id, key(3, 0).key_id]
    assert [(k.retired_at, k.trusted_until) for k in keys] == [
        (2_000.0, 12_000.0),
        (3_000.0, 3_700.0),
        (None, None),
    ]


def test_a_rotation_forgets_the_keys_no_longer_trusted(store: FleetStore) -> None:
    store.rotate_token_key(key(1, 1_000.0), grace=10_000.0)
    store.rotate_token_key(key(2, 2_000.0), grace=500.0)  # key 1 trusted until 2500
    store.rotate_token_key(key(3, 3_000.0), grace=0.0)  # key 2 no longer: both go
    assert [(k.key_id, k.retired_at) for k in store.token_keys()] == [(key(3, 0).key_id, None)]


def test_a_key_id_stored_already_is_refused_and_nothing_changes(store: FleetStore) -> None:
    store.rotate_token_key(key(1, 1_000.0), grace=10_000.0)
    with pytest.raises(Refused, match="token key `KEY1:AAAA:BBBB` is stored already"):
        store.rotate_token_key(key(1, 2_000.0), grace=0.0)
    assert store.revision == 1
    assert store.token_keys() == [key(1, 1_000.0)]


def test_every_connection_reads_the_same_keys(store_factory: StoreFactory) -> None:
    writer, replica = store_factory(), store_factory()
    writer.rotate_token_key(key(1, 1_000.0), grace=10_000.0)
    assert replica.token_keys() == writer.token_keys()
    replica.rotate_token_key(key(2, 2_000.0), grace=10_000.0)
    assert writer.token_keys() == replica.token_keys()
    assert writer.token_keys()[-1] == key(2, 2_000.0)


def test_reads_inside_reading_see_one_revision(store_factory: StoreFactory) -> None:
    reader, writer = store_factory(), store_factory()
    writer.rotate_token_key(key(1, 1_000.0), grace=10_000.0)
    with reader.reading():
        before = reader.token_keys()
        writer.rotate_token_key(key(2, 2_000.0), grace=10_000.0)
        assert reader.token_keys() == before
    assert len(reader.token_keys()) == 2


def test_a_sqlite_store_made_before_token_keys_gets_the_table(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        for script in MIGRATIONS[:3]:
            db.executescript(script)
        db.execute("PRAGMA user_version = 3")
    db.close()
    with open_store(path) as store:
        assert store.token_keys() == []
        store.rotate_token_key(key(1, 1_000.0), grace=10_000.0)
        assert store.revision == 1
