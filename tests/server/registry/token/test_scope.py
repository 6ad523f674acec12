"""The scope grammar: types with a class, names with a host and port, actions, what is ignored."""

from __future__ import annotations

import pytest

from dockgate_server.registry.token.scope import (
    MAX_SCOPE_LENGTH,
    Scope,
    is_resource_name,
    parse_scope,
    parse_scopes,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("repository:team-a/app:pull", Scope("repository", "team-a/app", ("pull",))),
        ("repository:app:pull,push", Scope("repository", "app", ("pull", "push"))),
        ("repository:app:push,pull,push", Scope("repository", "app", ("push", "pull"))),
        ("repository:app:*", Scope("repository", "app", ("*",))),
        ("repository:app:", Scope("repository", "app", ("",))),
        (
            "repository(plugin):team/plugin:pull",
            Scope("repository", "team/plugin", ("pull",), "plugin"),
        ),
        ("registry:catalog:*", Scope("registry", "catalog", ("*",))),
        # the name may hold one `:`, the port of a host: split at the first and the last `:`
        (
            "repository:localhost:5000/team/app:pull",
            Scope("repository", "localhost:5000/team/app", ("pull",)),
        ),
        (
            "repository:registry.example.com/app:pull",
            Scope("repository", "registry.example.com/app", ("pull",)),
        ),
        (
            "repository:My-Host.example:443/a/b:push",
            Scope("repository", "My-Host.example:443/a/b", ("push",)),
        ),
        ("repository:a__b/c--d/e.f_g:pull", Scope("repository", "a__b/c--d/e.f_g", ("pull",))),
    ],
)
def test_a_scope_parses(text: str, expected: Scope) -> None:
    assert parse_scope(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "repository",
        "repository:app",  # no actions
        ":app:pull",  # no type
        "Repository:app:pull",  # upper-case type
        "repository(Plugin):app:pull",
        "repository(plugin:app:pull",
        "repository:App:pull",  # upper-case component
        "repository:app/:pull",
        "repository:/app:pull",
        "repository:a//b:pull",
        "repository:a..b:pull",
        "repository:-a:pull",
        "repository:a_:pull",
        "repository:a___b:pull",  # `__` is a separator, `___` is not
        "repository:localhost:5000:pull",  # a host alone is no name
        "repository:host:port/app:pull",  # a port is digits
        "repository:a:1:2/app:pull",
        "repository:-host/app:pull",
        "repository:app:Pull",
        "repository:app:pull;push",
        "repository:app:pull push",  # a space separates scopes: `push` alone is no scope
    ],
)
def test_a_malformed_scope_is_none(text: str) -> None:
    assert parse_scope(text) is None


def test_a_scope_longer_than_the_limit_is_refused_without_work() -> None:
    name = "a" * MAX_SCOPE_LENGTH
    assert parse_scope(f"repository:{name}:pull") is None


def test_names_built_to_make_a_matcher_backtrack_are_refused() -> None:
    # would backtrack exponentially with a separator that can be empty; here it just fails
    assert not is_resource_name("a" + "-" * 500 + "!")
    assert not is_resource_name("a" * 200 + "-" * 300 + "/b")


def test_repeated_parameters_and_spaces_are_all_scopes_and_bad_ones_are_ignored() -> None:
    requested = parse_scopes(
        [
            "repository:team-a/app:pull",
            "repository:team-b/tools:push registry:catalog:*",
            "nonsense repository(plugin):x/y:pull",
            "",
        ]
    )
    assert [str(scope) for scope in requested.scopes] == [
        "repository:team-a/app:pull",
        "repository:team-b/tools:push",
        "registry:catalog:*",
        "repository:x/y:pull",
    ]
    assert requested.ignored == ("nonsense",)


def test_no_scope_is_an_empty_request() -> None:
    requested = parse_scopes([])
    assert requested.scopes == () and requested.ignored == ()
