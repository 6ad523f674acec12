"""Snapshot.authorize against a store: partitions, keys the store defines, malformed targets of an
unknown caller, and the decision cache agreeing with all of it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockgate_server.engine.cache import DecisionCache
from dockgate_server.engine.decision import Outcome
from dockgate_server.engine.request import RequestError
from dockgate_server.engine.snapshot import Snapshot
from dockgate_server.service.follow import SnapshotFollower
from dockgate_server.store.model import Organization, OrgNode, Repository, Role, Session, User
from dockgate_server.store.port import FleetStore, open_store

A = "111122223333"
B = "444455556666"
PULL = "ecr:BatchGetImage"
PROD = f"arn:aws:ecr:us-east-1:{A}:repository/prod/app"
ALICE = f"arn:aws:iam::{A}:user/alice"
DEPLOY = f"arn:aws:iam::{A}:role/deploy"
ISSUED = f"arn:aws:sts::{A}:assumed-role/deploy/issued"
FOREIGN = f"arn:aws:sts::{A}:assumed-role/deploy/elsewhere"
IGNORED = "context key `{}`: defined by the store, the caller's value is ignored"


def document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


ALLOW_ALL = {"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}


def deny_when(operator: str, key: str, value: str) -> dict[str, Any]:
    return {
        "Effect": "Deny",
        "Action": "ecr:*",
        "Resource": "*",
        "Condition": {operator: {key: value}},
    }


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FleetStore]:
    with open_store(tmp_path / "store.db") as opened:
        yield opened


def fleet(store: FleetStore, *statements: dict[str, Any]) -> Snapshot:
    """alice (tag team=a) and role deploy (tag team=a), both with `statements`; repository
    prod/app tagged env=prod; account A in an organization; a session of deploy issued here."""
    policy = {"access": document(ALLOW_ALL, *statements)}
    store.put_user(User(A, "alice", tags={"team": "a"}, inline=policy))
    store.put_role(Role(A, "deploy", tags={"team": "a"}, inline=policy))
    store.put_repository(Repository(PROD, tags={"env": "prod"}))
    full_access = document({"Effect": "Allow", "Action": "*", "Resource": "*"})
    root = OrgNode("r-ab12", service_control=(full_access,), accounts=(A,))
    store.set_organization(Organization("o-a1b2c3d4e5", root))
    now = time.time()
    store.put_session(
        Session(
            ISSUED,
            "session-1",
            f"role/{A}/deploy",
            ALICE,
            now - 60,
            now + 3600,
            tags={"team": "ops"},
        )
    )
    return SnapshotFollower(store).build()


# -- keys the store defines (issue 11 item 15) ---------------------------------------------------


@pytest.mark.parametrize(
    ("statement", "principal", "given"),
    [
        (
            deny_when("StringEquals", "ecr:ResourceTag/env", "prod"),
            ALICE,
            {"ecr:ResourceTag/env": "dev"},
        ),
        (
            deny_when("StringEquals", "aws:ResourceTag/env", "prod"),
            ALICE,
            {"aws:ResourceTag/env": "dev"},
        ),
        (
            deny_when("StringNotEquals", "aws:PrincipalTag/team", "admins"),
            ALICE,
            {"aws:PrincipalTag/team": "admins"},
        ),
        (
            deny_when("StringNotEquals", "aws:PrincipalTag/team", "admins"),
            DEPLOY,
            {"aws:PrincipalTag/team": "admins"},
        ),
        (
            deny_when("StringNotEquals", "aws:PrincipalTag/team", "admins"),
            ISSUED,
            {"aws:PrincipalTag/team": "admins"},
        ),
        (
            deny_when("StringEquals", "aws:PrincipalOrgID", "o-a1b2c3d4e5"),
            ALICE,
            {"aws:PrincipalOrgID": "o-other"},
        ),
        (
            deny_when("ForAnyValue:StringLike", "aws:PrincipalOrgPaths", "o-a1b2c3d4e5/*"),
            ALICE,
            {"aws:PrincipalOrgPaths": ["o-other/r-1/"]},
        ),
        (
            deny_when("StringEquals", "aws:PrincipalAccount", A),
            ALICE,
            {"aws:PrincipalAccount": B},
        ),
        (
            deny_when("StringEquals", "aws:ResourceAccount", A),
            ALICE,
            {"aws:ResourceAccount": B},
        ),
        (
            deny_when("StringEquals", "aws:ResourceOrgID", "o-a1b2c3d4e5"),
            ALICE,
            {"aws:ResourceOrgID": "o-other"},
        ),
    ],
)
def test_a_callers_value_for_a_store_key_cannot_lift_a_deny(
    store: FleetStore, statement: dict[str, Any], principal: str, given: dict[str, Any]
) -> None:
    snapshot = fleet(store, statement)
    assert snapshot.authorize(principal, PULL, PROD).outcome is Outcome.EXPLICITLY_DENIED
    decision = snapshot.authorize(principal, PULL, PROD, given)
    assert decision.outcome is Outcome.EXPLICITLY_DENIED
    (key,) = given
    assert decision.errors == (IGNORED.format(key.lower()),)
    cache = DecisionCache()
    assert cache.decide(snapshot, principal, PULL, PROD, given) == decision


def test_a_session_dockgate_did_not_issue_takes_session_tags_from_the_context(
    store: FleetStore,
) -> None:
    snapshot = fleet(store, deny_when("StringNotEquals", "aws:PrincipalTag/team", "ops"))
    # the role's own tag is team=a: denied until the session's tag says otherwise
    assert snapshot.authorize(FOREIGN, PULL, PROD).outcome is Outcome.EXPLICITLY_DENIED
    tagged = snapshot.authorize(FOREIGN, PULL, PROD, {"aws:PrincipalTag/team": "ops"})
    assert tagged.outcome is Outcome.ALLOWED
    assert tagged.errors == ()
    # the session issued here carries team=ops from the store
    assert snapshot.authorize(ISSUED, PULL, PROD).outcome is Outcome.ALLOWED


def test_the_cache_lists_ignored_keys_exactly_as_the_request_gave_them(store: FleetStore) -> None:
    snapshot = fleet(store)
    cache = DecisionCache()
    plain = cache.decide(snapshot, ALICE, PULL, PROD)
    assert plain.outcome is Outcome.ALLOWED
    assert plain.errors == ()
    given = {"aws:PrincipalAccount": B}  # read by no statement, still ignored and listed
    listed = cache.decide(snapshot, ALICE, PULL, PROD, given)
    assert listed == snapshot.authorize(ALICE, PULL, PROD, given)
    assert listed.errors == (IGNORED.format("aws:principalaccount"),)
    assert cache.decide(snapshot, ALICE, PULL, PROD) == plain
    assert cache.decide(snapshot, ALICE, PULL, PROD, {"aws:SourceIp": "192.0.2.1"}) == plain
    assert cache.hits == 2


# -- partitions (issue 11 item 14) -----------------------------------------------------------------


@pytest.mark.parametrize(
    "principal",
    [
        f"arn:aws-cn:iam::{A}:root",
        f"arn:aws-cn:iam::{A}:user/alice",
        f"arn:aws-us-gov:sts::{A}:assumed-role/deploy/x",
        f"arn:aws-cn:iam::{A}:role/deploy",
        f"arn:aws-cn:sts::{A}:federated-user/alice",
    ],
)
def test_a_principal_of_another_partition_is_not_the_accounts(
    store: FleetStore, principal: str
) -> None:
    snapshot = fleet(store)
    decision = snapshot.authorize(principal, PULL, PROD)
    assert decision.outcome is Outcome.IMPLICITLY_DENIED
    assert "not in the store" in decision.reasons[0].detail
    star = snapshot.authorize(principal, "ecr:GetAuthorizationToken", "*")
    assert star.outcome is Outcome.IMPLICITLY_DENIED
    assert DecisionCache().decide(snapshot, principal, PULL, PROD) == decision


def test_the_root_user_is_known_in_its_own_partition_only(store: FleetStore) -> None:
    snapshot = fleet(store)
    assert snapshot.authorize(f"arn:aws:iam::{A}:root", PULL, PROD).outcome is Outcome.ALLOWED
    cn_repository = f"arn:aws-cn:ecr:cn-north-1:{B}:repository/app"
    store.put_user(User(B, "li", inline={"access": document(ALLOW_ALL)}, partition="aws-cn"))
    store.put_repository(Repository(cn_repository))
    snapshot = SnapshotFollower(store).refresh(snapshot)  # incrementally, as a follower does
    assert snapshot.partition_of(B) == "aws-cn"
    assert snapshot.authorize(f"arn:aws-cn:iam::{B}:root", PULL, cn_repository).outcome is (
        Outcome.ALLOWED
    )
    assert snapshot.authorize(f"arn:aws:iam::{B}:root", PULL, cn_repository).outcome is (
        Outcome.IMPLICITLY_DENIED
    )
    li = f"arn:aws-cn:iam::{B}:user/li"
    assert snapshot.authorize(li, PULL, cn_repository).outcome is Outcome.ALLOWED
    crossing = snapshot.authorize(li, PULL, PROD)
    assert crossing.outcome is Outcome.IMPLICITLY_DENIED
    assert "access never crosses partitions" in crossing.reasons[0].detail


def test_an_unknown_partition_is_an_invalid_principal(store: FleetStore) -> None:
    snapshot = fleet(store)
    for principal in (f"arn:bogus:sts::{A}:assumed-role/deploy/x", f"arn:aws-xx:iam::{A}:root"):
        with pytest.raises(RequestError, match="unknown partition") as raised:
            snapshot.authorize(principal, PULL, PROD)
        assert raised.value.field == "principal"


# -- repository names (issue 11 item 13) -----------------------------------------------------------


@pytest.mark.parametrize("principal", [ALICE, f"arn:aws:iam::{A}:user/nobody"])
def test_a_malformed_repository_is_refused_for_known_and_unknown_callers(
    store: FleetStore, principal: str
) -> None:
    snapshot = fleet(store)
    for name in ("Prod/App", "prod/../app", "prod/app\x00", "prod//app"):
        resource = f"arn:aws:ecr:us-east-1:{A}:repository/{name}"
        with pytest.raises(RequestError, match="is not a repository name") as raised:
            snapshot.authorize(principal, PULL, resource)
        assert raised.value.field == "resource"
        with pytest.raises(RequestError):
            DecisionCache().decide(snapshot, principal, PULL, resource)
    with pytest.raises(RequestError, match="action"):
        snapshot.authorize(principal, "ecr:Pull*", PROD)
