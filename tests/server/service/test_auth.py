"""The admin token: from the environment or its file, never empty, the file whole and 0600."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockgate_server.service.auth import TOKEN_VARIABLE, AdminTokenError, load_admin_token


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def no_token_variable(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(TOKEN_VARIABLE, raising=False)
    previous = os.umask(0o022)  # the usual umask, under which files are made 0644
    try:
        yield
    finally:
        os.umask(previous)


def test_the_variable_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_VARIABLE, "from-the-environment")
    assert load_admin_token(tmp_path / "admin-token") == "from-the-environment"
    assert not (tmp_path / "admin-token").exists()


@pytest.mark.parametrize("blank", ["", " ", "\n", "\t \n"])
def test_a_blank_variable_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blank: str
) -> None:
    (tmp_path / "admin-token").write_text("a-good-token\n")
    monkeypatch.setenv(TOKEN_VARIABLE, blank)
    with pytest.raises(AdminTokenError) as refused:
        load_admin_token(tmp_path / "admin-token")
    assert str(refused.value).startswith(f"${TOKEN_VARIABLE} is set but empty: ")


def test_a_first_start_makes_a_token_file_of_mode_0600_in_a_folder_of_mode_0700(
    tmp_path: Path,
) -> None:
    token_file = tmp_path / "new" / "data" / "admin-token"
    token = load_admin_token(token_file)
    assert len(token) >= 32
    assert token_file.read_text() == token + "\n"
    assert mode(token_file) == 0o600
    assert mode(tmp_path / "new") == 0o700
    assert mode(token_file.parent) == 0o700
    assert [p.name for p in token_file.parent.iterdir()] == ["admin-token"]  # no temporary left
    assert load_admin_token(token_file) == token  # the next start reads it back


@pytest.mark.parametrize("content", ["", "\n", "   \n\t"])
def test_an_empty_token_file_is_refused(tmp_path: Path, content: str) -> None:
    token_file = tmp_path / "admin-token"
    token_file.write_text(content)
    with pytest.raises(AdminTokenError) as refused:
        load_admin_token(token_file)
    assert str(refused.value).startswith(f"admin token file `{token_file}` is empty: ")
    assert token_file.read_text() == content  # the operator decides what to do with it


def test_a_token_file_others_may_read_is_tightened(tmp_path: Path) -> None:
    token_file = tmp_path / "admin-token"
    token_file.write_text("  written-by-hand \n")
    token_file.chmod(0o644)
    assert load_admin_token(token_file) == "written-by-hand"
    assert mode(token_file) == 0o600


def test_a_token_file_that_cannot_be_read_is_refused(tmp_path: Path) -> None:
    token_file = tmp_path / "admin-token"
    token_file.mkdir()
    with pytest.raises(AdminTokenError, match=r"^admin token file `.*admin-token`: cannot read: "):
        load_admin_token(token_file)


def test_a_token_file_where_a_folder_cannot_be_made_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("a file, not a folder")
    with pytest.raises(
        AdminTokenError,
        match=r"^admin token file `.*data/admin-token`: cannot read: Not a directory$",
    ):
        load_admin_token(tmp_path / "data" / "admin-token")


def test_a_write_that_fails_leaves_no_token_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash between creating the file and writing the token must not leave an empty file,
    which the next start would read as the token (`Bearer `)."""
    real_fdopen = os.fdopen

    class Full:
        def __init__(self, handle: Any) -> None:
            self._handle = handle

        def __enter__(self) -> Full:
            return self

        def __exit__(self, *_: object) -> None:
            self._handle.close()

        def write(self, _: str) -> int:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: Full(real_fdopen(fd, *a, **k)))
    token_file = tmp_path / "admin-token"
    with pytest.raises(AdminTokenError, match="cannot create: No space left on device"):
        load_admin_token(token_file)
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []
    assert load_admin_token(token_file)  # the next start makes a whole one


def test_of_two_first_starts_both_use_the_token_that_won(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "admin-token"
    real_link = os.link

    def link_after_the_other(source: str, target: Path) -> None:
        Path(target).write_text("the-other-servers-token\n")  # it won the race
        real_link(source, target)

    monkeypatch.setattr(os, "link", link_after_the_other)
    assert load_admin_token(token_file) == "the-other-servers-token"
    assert [p.name for p in tmp_path.iterdir()] == ["admin-token"]
