"""The SQLite store's files: only their owner may read them, and a read-only open makes none."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockgate_server.store import Repository, StoreError, open_store
from dockgate_server.store.sqlite import MissingStoreError
from tests.server.store.fleet_bundles import MAIN

REPOSITORY = f"arn:aws:ecr:us-east-1:{MAIN}:repository/team-a/app"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def common_umask() -> Iterator[None]:
    """The usual umask, under which SQLite alone would make the store 0644."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_a_new_store_and_its_wal_and_shm_files_are_0600(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    with open_store(path) as store:
        store.put_repository(Repository(REPOSITORY))
        wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
        assert wal.exists() and shm.exists()  # while a connection is open, in WAL mode
        assert (mode(path), mode(wal), mode(shm)) == (0o600, 0o600, 0o600)


def test_the_folders_a_store_makes_are_0700(tmp_path: Path) -> None:
    path = tmp_path / "made" / "by" / "dockgate" / "store.sqlite3"
    open_store(path).close()
    for folder in (tmp_path / "made", tmp_path / "made" / "by", path.parent):
        assert mode(folder) == 0o700, folder
    assert mode(path) == 0o600


def test_an_existing_folder_keeps_its_mode(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    open_store(shared / "store.sqlite3").close()
    assert mode(shared) == 0o755


def test_a_store_an_older_version_left_readable_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    with open_store(path) as store:
        store.put_repository(Repository(REPOSITORY))
    path.chmod(0o644)
    for leftover in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        leftover.touch()  # as a crash would leave them
        leftover.chmod(0o644)
    with open_store(path) as again:
        assert again.revision == 1
        assert mode(path) == 0o600
        assert mode(Path(f"{path}-wal")) == 0o600
        assert mode(Path(f"{path}-shm")) == 0o600


def test_a_read_only_open_of_a_missing_store_makes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "store.sqlite3"
    with pytest.raises(MissingStoreError) as missing:
        open_store(path, create=False)
    assert str(missing.value) == f"store `{path}` does not exist"
    assert isinstance(missing.value, StoreError)
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_open_of_a_missing_file_in_an_existing_folder_makes_nothing(
    tmp_path: Path,
) -> None:
    with pytest.raises(MissingStoreError):
        open_store(tmp_path / "store.sqlite3", create=False)
    assert list(tmp_path.iterdir()) == []


def test_an_open_without_create_reads_an_existing_store(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    with open_store(path) as store:
        store.put_repository(Repository(REPOSITORY))
    with open_store(path, create=False) as again:
        assert again.revision == 1
        assert [r.arn for r in again.load_fleet().repositories] == [REPOSITORY]


@pytest.mark.parametrize("create", [True, False])
def test_a_folder_where_the_store_should_be_is_a_store_error(tmp_path: Path, create: bool) -> None:
    path = tmp_path / "store.sqlite3"
    path.mkdir()
    with pytest.raises(StoreError, match=r"^store `.*store\.sqlite3`"):
        open_store(path, create=create)


def test_a_file_where_a_folder_should_be_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a folder")
    with pytest.raises(StoreError, match=r"^store `.*data/store\.sqlite3`: cannot open: "):
        open_store(tmp_path / "data" / "store.sqlite3")


@pytest.mark.parametrize("create", [True, False])
def test_a_file_that_is_not_a_store_is_a_store_error(tmp_path: Path, create: bool) -> None:
    path = tmp_path / "store.sqlite3"
    path.write_bytes(b"this is not an SQLite database, and it is long enough to tell" * 20)
    with pytest.raises(StoreError, match=r"^store `.*`: cannot open: file is not a database"):
        open_store(path, create=create)
