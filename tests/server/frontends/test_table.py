"""The door table: every door is whole (options, placement, ports), none collides with another."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from dockgate_server.cli_serve import add_serve_options
from dockgate_server.frontends.door import Door, Placement
from dockgate_server.frontends.registry import OPTIONS as REGISTRY_OPTIONS
from dockgate_server.frontends.table import DOORS


def _parsed(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_serve_options(parser, "/data")
    return parser.parse_args(list(argv))


def test_names_ports_and_options_are_unique() -> None:
    names = [door.name for door in DOORS]
    ports = [key for door in DOORS for key in door.announces]
    flags = [flag for door in DOORS for option in door.options for flag in option.flags]
    flags += [flag for option in REGISTRY_OPTIONS for flag in option.flags]
    for found in (names, ports, flags):
        assert len(found) == len(set(found)), found


def test_a_door_adding_to_another_port_comes_after_it() -> None:
    names = [door.name for door in DOORS]
    assert names.index("envoy") > names.index("decision")
    assert next(d for d in DOORS if d.name == "envoy").placement is Placement.EVERY_WORKER


@pytest.mark.parametrize("door", DOORS, ids=lambda door: door.name)
def test_every_listen_option_is_checked_and_announced(door: Door[Any]) -> None:
    arguments = _parsed(
        "--http-auth-listen", "127.0.0.1:0", "--envoy", "--metrics-listen", "127.0.0.1:0",
        "--token-listen", "127.0.0.1:0", "--token-service", "dockgate-registry",
        "--registry-account", "111122223333", "--registry-region", "us-east-1",
        "--console-listen", "127.0.0.1:0", "--authzen-listen", "127.0.0.1:0",
    )  # fmt: skip
    checked = {option for _, option, _ in arguments.addresses}
    settings = door.configure(arguments)
    assert settings is not None, "every door is on with these options"
    listens = door.listens(settings)
    assert {listen.option for listen in listens} <= checked
    assert [listen.announce for listen in listens] == list(door.announces)


def test_the_defaults_turn_on_the_decision_admin_and_metrics_doors_only() -> None:
    arguments = _parsed()
    on = [door.name for door in DOORS if door.configure(arguments) is not None]
    assert on == ["decision", "admin", "metrics"]
    assert [door.uses_registry for door in DOORS if door.name in on] == [False] * 3


def test_an_empty_metrics_address_turns_that_door_off() -> None:
    arguments = _parsed("--metrics-listen", "")
    assert arguments.empty_off == ("metrics_listen",)
    metrics = next(door for door in DOORS if door.name == "metrics")
    assert metrics.configure(arguments) is None
