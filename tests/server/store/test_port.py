"""`open_store` picks the backend a path or URL names, and names the URL (never its password)
in every error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dockgate_server.cli import main
from dockgate_server.store import bundle_to_fleet
from dockgate_server.store.model import Repository
from dockgate_server.store.port import (
    FleetStore,
    MissingStoreError,
    StoreError,
    describe_url,
    open_store,
)
from tests.server.store.fleet_bundles import realistic_bundle

REPOSITORY = "arn:aws:ecr:us-east-1:111122223333:repository/team-a/app"


def test_a_path_and_a_sqlite_url_open_the_same_store(tmp_path: Path) -> None:
    path = tmp_path / "data" / "store.sqlite3"
    with open_store(path) as store:
        assert isinstance(store, FleetStore)
        store.put_repository(Repository(REPOSITORY))
    with open_store(f"sqlite://{path}") as again:
        assert again.describe() == str(path)
        assert again.load_repository(REPOSITORY) == Repository(REPOSITORY)


def test_four_slashes_name_the_same_absolute_path_as_three(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    with open_store(f"sqlite:///{path}") as store:  # SQLAlchemy's spelling: `sqlite:////abs`
        assert store.describe() == str(path)
    assert path.is_file()


def test_a_sqlite_url_with_spaces_in_its_path_is_unquoted(tmp_path: Path) -> None:
    path = tmp_path / "my data" / "store.sqlite3"
    with open_store(f"sqlite://{str(path).replace(' ', '%20')}") as store:
        assert store.describe() == str(path)
    assert path.is_file()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "mysql://root@127.0.0.1/db",
            r"^store `mysql://root@127\.0\.0\.1/db`: unknown scheme `mysql`",
        ),
        (
            "sqlite://host/store.db",
            r"^store `sqlite://host/store\.db`: a SQLite URL is `sqlite:///PATH`",
        ),
        ("", r"^store ``: empty"),
    ],
)
def test_a_url_no_backend_serves_is_an_error_naming_it(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        open_store(url)


def test_an_error_never_shows_the_password() -> None:
    with pytest.raises(StoreError) as raised:
        open_store("mysql://admin:hunter2@db.example:3306/fleet")
    assert "hunter2" not in str(raised.value)
    assert "admin:***@db.example:3306" in str(raised.value)


def test_describe_url_hides_only_the_password() -> None:
    assert describe_url("postgresql://u:p%40ss@h:5432/d?sslmode=require") == (
        "postgresql://u:***@h:5432/d?sslmode=require"
    )
    assert describe_url("postgresql://u@h/d") == "postgresql://u@h/d"
    assert describe_url("/var/lib/dockgate/store.sqlite3") == "/var/lib/dockgate/store.sqlite3"


def test_without_create_a_missing_sqlite_store_is_missing_and_nothing_is_made(
    tmp_path: Path,
) -> None:
    path = tmp_path / "no" / "store.sqlite3"
    with pytest.raises(MissingStoreError, match=r"does not exist"):
        open_store(f"sqlite://{path}", create=False)
    assert not (tmp_path / "no").exists()


def test_the_cli_imports_and_exports_through_a_store_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps(realistic_bundle()))
    url = f"sqlite://{tmp_path / 'store.sqlite3'}"
    assert main(["import", str(bundle), "--store", url]) == 0
    assert json.loads(capsys.readouterr().out)["revision"] == 1
    assert main(["export", "--store", url]) == 0
    exported = json.loads(capsys.readouterr().out)
    with open_store(url, create=False) as store:
        assert bundle_to_fleet(exported) == store.load_fleet()
        assert len(store.load_fleet().users) == len(bundle_to_fleet(realistic_bundle()).users)


def test_the_cli_reports_a_store_url_it_cannot_open_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["export", "--store", "mysql://root:secret@127.0.0.1/db"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("dockgate: store `mysql://root:***@127.0.0.1/db`: unknown scheme")
    assert "secret" not in err
