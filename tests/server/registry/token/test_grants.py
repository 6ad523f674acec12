"""Scopes → grants, decided by the real engine: partial grants, cross-account, explicit deny, a
source-IP condition, the catalog rule, and no grant at all when a decision fails."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from dockgate_server.engine.decision import Decision
from dockgate_server.registry.gate import DecisionUnavailable
from dockgate_server.registry.token.grants import SCOPE_ACTIONS, Access, grant_access
from dockgate_server.registry.token.scope import parse_scopes
from tests.server.registry.token.fleet import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    PULL,
    PUSH,
    PUSHER,
    REGISTRY,
    REPOSITORIES,
    Decisions,
    arn,
)

ALL = tuple(arn(name) for name in REPOSITORIES)
INSIDE = {"aws:SourceIp": "10.1.2.3"}
OUTSIDE = {"aws:SourceIp": "192.0.2.10"}


def grant(
    principal: str,
    *scopes: str,
    context: Mapping[str, str] = INSIDE,
    decide: Any = None,
    repositories: Iterable[str] = ALL,
) -> tuple[Access, ...]:
    listed = list(repositories)
    return grant_access(
        principal,
        parse_scopes(scopes).scopes,
        REGISTRY,
        context,
        decide=decide or Decisions(),
        repositories=lambda: listed,
    )


def test_the_scope_actions_are_the_ecr_actions_of_the_issue() -> None:
    assert SCOPE_ACTIONS["pull"] == tuple(PULL)
    assert SCOPE_ACTIONS["push"] == tuple(PUSH)
    assert SCOPE_ACTIONS["delete"] == ("ecr:BatchDeleteImage",)
    assert set(SCOPE_ACTIONS["*"]) == {*PULL, *PUSH, "ecr:BatchDeleteImage"}


def test_same_account_pull_and_push_are_granted_on_the_allowed_repository_only() -> None:
    assert grant(ALICE, "repository:team-a/app:pull,push", "repository:team-b/tools:pull") == (
        Access("repository", "team-a/app", ("pull", "push")),
    )


def test_a_partial_grant_carries_only_the_allowed_actions() -> None:
    assert grant(ALICE, "repository:team-a/app:pull,push,delete") == (
        Access("repository", "team-a/app", ("pull", "push")),
    )


def test_an_explicit_deny_wins_over_an_allow() -> None:
    assert grant(ALICE, "repository:prod/secret:pull") == ()
    assert grant(DAVE, "repository:prod/secret:pull,delete") == (
        Access("repository", "prod/secret", ("pull",)),
    )


def test_star_is_granted_whole_or_as_the_parts_allowed() -> None:
    # dave may do everything but delete: `*` falls back to what is allowed
    assert grant(DAVE, "repository:team-b/tools:*") == (
        Access("repository", "team-b/tools", ("pull", "push")),
    )
    unrestricted = Decisions()
    assert grant(ALICE, "repository:team-a/app:*", decide=unrestricted) == (
        Access("repository", "team-a/app", ("pull", "push")),
    )


def test_cross_account_needs_the_repository_policy_too() -> None:
    assert grant(CAROL, "repository:team-a/app:pull,push") == (
        Access("repository", "team-a/app", ("pull",)),
    )
    assert grant(CAROL, "repository:team-b/tools:pull") == ()


def test_push_without_pull_is_granted_push_alone() -> None:
    assert grant(PUSHER, "repository:team-a/app:pull,push") == (
        Access("repository", "team-a/app", ("push",)),
    )


def test_a_source_ip_condition_is_decided_with_the_clients_address() -> None:
    assert grant(BOB, "repository:team-b/tools:pull", context=INSIDE) == (
        Access("repository", "team-b/tools", ("pull",)),
    )
    assert grant(BOB, "repository:team-b/tools:pull", context=OUTSIDE) == ()


def test_scopes_of_one_repository_are_merged_whatever_their_class() -> None:
    assert grant(ALICE, "repository(plugin):team-a/app:push", "repository:team-a/app:pull") == (
        Access("repository", "team-a/app", ("push", "pull")),
    )


def test_each_decision_is_asked_once_per_request() -> None:
    decisions = Decisions()
    grant(DAVE, "repository:team-b/tools:pull,*", "repository:team-b/tools:pull", decide=decisions)
    asked = [(action, resource) for _, action, resource in decisions.calls]
    assert len(asked) == len(set(asked)) == len(SCOPE_ACTIONS["*"])


def test_names_that_are_no_ecr_repository_and_unknown_things_are_not_decided() -> None:
    decisions = Decisions()
    assert (
        grant(
            DAVE,
            "repository:localhost:5000/team-b/tools:pull",
            "repository:team-b/tools:read,pull-all,",
            "registry:catalog:pull",
            "index:team-b/tools:pull",
            decide=decisions,
        )
        == ()
    )
    assert decisions.calls == []


def test_the_catalog_needs_describe_repositories_on_every_repository() -> None:
    assert grant(DAVE, "registry:catalog:*") == (Access("registry", "catalog", ("*",)),)
    # alice may describe repositories, but prod/* denies her everything: the registry would
    # list prod/secret to her, so no catalog
    assert grant(ALICE, "registry:catalog:*") == ()
    assert grant(ALICE, "registry:catalog:*", repositories=[arn("team-a/app")]) == (
        Access("registry", "catalog", ("*",)),
    )
    assert grant(BOB, "registry:catalog:*") == ()


def test_the_catalog_counts_only_this_registrys_repositories() -> None:
    decisions = Decisions()
    elsewhere = "arn:aws:ecr:eu-west-1:111122223333:repository/team-a/app"
    grant(DAVE, "registry:catalog:*", decide=decisions, repositories=[arn("team-a/app"), elsewhere])
    assert [resource for _, _, resource in decisions.calls] == [arn("team-a/app")]


def test_an_empty_registry_grants_no_catalog() -> None:
    assert grant(DAVE, "registry:catalog:*", repositories=[]) == ()


def broken(principal: str, action: str, resource: str, context: Mapping[str, Any]) -> Decision:
    raise RuntimeError("the snapshot broke")


def stale(principal: str, action: str, resource: str, context: Mapping[str, Any]) -> Decision:
    raise DecisionUnavailable("the policy is too stale to trust")


@pytest.mark.parametrize(
    ("decide", "error"), [(broken, RuntimeError), (stale, DecisionUnavailable)]
)
def test_a_decision_that_fails_fails_the_whole_grant(decide: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        grant(DAVE, "repository:team-b/tools:pull", decide=decide)


def test_a_listing_that_fails_fails_the_catalog() -> None:
    def listing() -> list[str]:
        raise RuntimeError("the store is gone")

    with pytest.raises(RuntimeError):
        grant_access(
            ALICE,
            parse_scopes(["registry:catalog:*"]).scopes,
            REGISTRY,
            INSIDE,
            decide=Decisions(),
            repositories=listing,
        )


def test_an_access_entry_is_a_claim_and_scope_strings() -> None:
    entry = Access("repository", "team-a/app", ("pull", "push"))
    assert entry.claim() == {
        "type": "repository",
        "name": "team-a/app",
        "actions": ["pull", "push"],
    }
    assert entry.scopes() == ["repository:team-a/app:pull", "repository:team-a/app:push"]
