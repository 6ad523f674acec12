"""`dockgate bench --help` documents every option, and options that cannot work are refused."""

from __future__ import annotations

import argparse

import pytest

from dockgate_server.bench.options import add_arguments
from dockgate_server.cli import main


def options() -> list[argparse.Action]:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return [action for action in parser._actions if action.option_strings and action.dest != "help"]


def test_help_documents_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["bench", "--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for action in options():
        assert action.help and action.help != argparse.SUPPRESS, action.option_strings
        assert len(action.help) > 20, f"{action.option_strings}: say what it does"
        for name in action.option_strings:
            assert name in text


def test_the_options_cover_the_issue() -> None:
    names = {name for action in options() for name in action.option_strings}
    assert {
        "--server",
        "--start",
        "--admin-token",
        "--workers",
        "--existing",
        "--mode",
        "--batch-size",
        "--concurrency",
        "--duration",
        "--count",
        "--warmup",
        "--prime",
        "--rate",
        "--zipf",
        "--cross-account-share",
        "--denied-share",
        "--push-share",
        "--baseline",
        "--check",
        "--report",
        "--plot",
    } <= names


def test_a_server_or_start_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["bench"])
    assert exited.value.code == 2
    assert "--server" in capsys.readouterr().err


def test_duration_and_count_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["bench", "--start", "--duration", "1", "--count", "5"])
    assert "not allowed with" in capsys.readouterr().err


def test_a_server_without_an_admin_token_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCKGATE_ADMIN_TOKEN", raising=False)
    assert main(["bench", "--server", "127.0.0.1:1", "--quiet"]) == 2
    assert "admin-token" in capsys.readouterr().err
