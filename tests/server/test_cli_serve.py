"""`dockgate serve`'s options come from the server and from each door of the table: a new door's
options appear, checked like the others, without a line of the command changing."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from dockgate_server import cli_serve
from dockgate_server.cli import main
from dockgate_server.frontends.door import Listen, Option, Placement, Section, Site
from dockgate_server.frontends.table import DOORS


class _TokenLikeDoor:
    """A door as the next one will be: its own listen address, in the registry group."""

    name = "probe"
    placement = Placement.ONE_PROCESS
    announces = ("probe_port",)
    uses_registry = True
    options = (
        Option(
            ("--probe-listen",),
            {"metavar": "HOST:PORT", "help": "a door only this test knows"},
            Section.REGISTRY,
            listens=True,
        ),
    )

    def configure(self, arguments: argparse.Namespace) -> str | None:
        listen: str | None = arguments.probe_listen
        return listen

    def listens(self, settings: str) -> tuple[Listen, ...]:
        return (Listen("--probe-listen", settings, "probe_port"),)

    async def open(self, settings: str, site: Site) -> Any:
        raise AssertionError("not opened here")


def test_the_help_lists_every_option_of_every_door(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    shown = capsys.readouterr().out
    for door in DOORS:
        for option in door.options:
            assert option.flags[0] in shown, option.flags
    registry_group = shown.split("registry adapters:", 1)[1]
    assert "--envoy" in registry_group and "--http-auth-listen" in registry_group
    assert "--admin-listen" not in registry_group


def test_a_new_doors_options_are_added_and_its_address_checked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli_serve, "DOORS", (*DOORS, _TokenLikeDoor()))
    parser = argparse.ArgumentParser()
    cli_serve.add_serve_options(parser, "/data")
    arguments = parser.parse_args(["--probe-listen", "127.0.0.1:0"])
    assert arguments.probe_listen == "127.0.0.1:0"
    assert ("probe_listen", "--probe-listen", True) in arguments.addresses
    help_text = parser.format_help()
    assert help_text.index("--probe-listen") > help_text.index("--sweep-interval")
    # the real command's parser, built with the door: refused before anything is created
    assert main(["serve", "--probe-listen", "nonsense"]) == 2
    assert "--probe-listen `nonsense`: expected HOST:PORT" in capsys.readouterr().err
