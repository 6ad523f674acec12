"""ECR repository names: the pattern, its bounds, and agreement with the registry gate's check."""

from __future__ import annotations

import pytest

from dockgate_server.policy.repository_name import (
    NAME_MAX,
    is_repository_name,
    repository_name_of,
)
from dockgate_server.registry.routes import is_repository_name as registry_is_repository_name

NAMES = [
    ("team-a/app", True),
    ("ab", True),
    ("0day", True),
    ("a.b_c-d/e", True),
    ("a/b/c/d/e", True),
    ("a" * NAME_MAX, True),
    ("a" * (NAME_MAX + 1), False),
    ("a", False),
    ("", False),
    ("Team-a/app", False),
    ("team-a/../app", False),
    ("..", False),
    ("team-a//app", False),
    ("/team-a", False),
    ("team-a/", False),
    ("-app", False),
    ("app-", False),
    ("a--b", False),
    ("a._b", False),
    ("app\x00", False),
    ("ap\np", False),
    ("app\x7f", False),
    ("app name", False),
    ("caf\u00e9", False),
    ("app\u0660", False),  # an Arabic-Indic digit is no ASCII digit
]


@pytest.mark.parametrize(("name", "valid"), NAMES)
def test_is_repository_name(name: str, valid: bool) -> None:
    assert is_repository_name(name) is valid


@pytest.mark.parametrize(("name", "valid"), NAMES)
def test_the_registry_gate_agrees(name: str, valid: bool) -> None:
    assert registry_is_repository_name(name) is valid


@pytest.mark.parametrize(
    "hostile", ["a-" * 127 + "!", "a/" * 127 + "!", ("a." * 60 + "a/") * 2 + "!", "a" * 10**6]
)
def test_hostile_names_are_refused(hostile: str) -> None:
    assert not is_repository_name(hostile)


@pytest.mark.parametrize(
    ("service", "resource", "name"),
    [
        ("ecr", "repository/team-a/app", "team-a/app"),
        ("ecr", "repository/", ""),
        ("ecr", "repositoryx", None),
        ("s3", "repository/x", None),
    ],
)
def test_repository_name_of(service: str, resource: str, name: str | None) -> None:
    assert repository_name_of(service, resource) == name
