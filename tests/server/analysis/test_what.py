"""What can: the sample fleet's principals, over every repository or on one."""

from __future__ import annotations

import pytest

from dockgate_server.analysis import Access, what_can
from dockgate_server.engine.request import RequestError
from tests.server.analysis.sample import (
    ALICE,
    APP,
    BASE,
    BOB,
    BUILD,
    CAROL,
    LOCKED,
    NOW,
    PARTNER,
    sample_snapshot,
)


def pairs(principal: str, repository: str | None = None) -> dict[tuple[str, str], Access]:
    found = what_can(sample_snapshot(), principal, repository, now=NOW)
    return {(f.repository, f.action): f.access for f in found}


def test_a_session_can_do_what_its_role_and_session_policy_both_allow() -> None:
    # and pull the `*`-granted repository, which needs no identity policy in its account
    assert pairs(BUILD) == {
        (APP, "ecr:BatchGetImage"): Access.ALLOWED,
        (LOCKED, "ecr:BatchGetImage"): Access.ALLOWED,
        (BASE, "ecr:BatchGetImage"): Access.ALLOWED,
    }


def test_a_boundary_limits_what_a_user_can_do() -> None:
    assert pairs(CAROL) == {
        (repository, "ecr:BatchGetImage"): Access.ALLOWED for repository in (APP, LOCKED, BASE)
    }


def test_conditional_access_on_one_repository() -> None:
    assert pairs(BOB, APP) == {(APP, "ecr:PutImage"): Access.CONDITIONAL}


def test_a_cross_account_principal_reaches_only_repositories_whose_policy_names_it() -> None:
    assert pairs(PARTNER) == {
        (APP, "ecr:BatchGetImage"): Access.ALLOWED,
        (BASE, "ecr:BatchGetImage"): Access.ALLOWED,
    }


def test_an_explicit_deny_takes_an_action_away_and_is_listed_on_request() -> None:
    assert (LOCKED, "ecr:PutImage") not in pairs(ALICE)
    assert pairs(ALICE)[(APP, "ecr:PutImage")] is Access.ALLOWED
    found = what_can(sample_snapshot(), ALICE, LOCKED, now=NOW, include_denied=True)
    denied = [f for f in found if f.access is Access.EXPLICITLY_DENIED]
    assert {f.action for f in denied} == {"ecr:PutImage", "ecr:DeleteRepository"}


def test_results_are_ordered_by_repository_then_action() -> None:
    found = what_can(sample_snapshot(), ALICE, now=NOW)
    keys = [(f.repository, f.action) for f in found]
    assert keys == sorted(keys)
    assert len(keys) == len(set(keys))


def test_a_malformed_principal_is_a_request_error() -> None:
    with pytest.raises(RequestError):
        what_can(sample_snapshot(), "not-a-principal", now=NOW)
