"""`dockgate serve --max-staleness SECONDS`: a bad value is one line naming the option, before
anything is created."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.test_cli_errors import one_error_line


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "share"))
    monkeypatch.delenv("DOCKGATE_STORE", raising=False)
    yield home
    assert not home.exists(), "a refused serve created its default data folder"


@pytest.mark.parametrize("value", ["soon", "0", "-1", "nan", "inf"])
def test_a_bad_max_staleness_is_refused_by_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, value: str
) -> None:
    data = tmp_path / "data"
    error = one_error_line(capsys, ["serve", "--data-dir", str(data), "--max-staleness", value])
    assert error == f"--max-staleness `{value}`: expected a number of seconds above 0"
    assert not data.exists()
