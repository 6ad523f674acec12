"""Who can: each kind of access on the sample fleet, and every answer as `decide` gives it."""

from __future__ import annotations

from dockgate_server.analysis import Access, Finding, PrincipalType, who_can
from dockgate_server.engine.decide import Question, decide
from dockgate_server.engine.snapshot import Snapshot
from tests.server.analysis.sample import (
    ALICE,
    APP,
    BASE,
    BOB,
    BUILD,
    CAROL,
    CI,
    LOCKED,
    NOW,
    PARTNER,
    ROOT_A,
    ROOT_B,
    B,
    sample_snapshot,
)


def decided(found: list[Finding]) -> dict[str, Access]:
    return {f.principal: f.access for f in found if f.type.decided}


def agree_with_decide(snapshot: Snapshot, found: list[Finding]) -> None:
    """Allowed findings are allowed by `decide` with no context; conditional ones by `decide`
    with their example context and not without."""
    for finding in found:
        if not finding.type.decided:
            continue
        plain = decide(
            snapshot, Question(finding.principal, finding.action, finding.repository), now=NOW
        )
        if finding.access is Access.ALLOWED:
            assert plain.allowed, finding
        elif finding.access is Access.CONDITIONAL:
            assert finding.example is not None
            question = Question.of(
                finding.principal, finding.action, finding.repository, dict(finding.example)
            )
            assert decide(snapshot, question, now=NOW).allowed, finding
        else:
            assert not plain.allowed


def test_same_account_identity_grants_a_condition_and_a_boundary() -> None:
    snapshot = sample_snapshot()
    found = who_can(snapshot, "ecr:PutImage", APP, now=NOW)
    # carol's `ecr:*` stops at her pull-only boundary; bob pushes from 10.0.0.0/8 only
    assert decided(found) == {
        ALICE: Access.ALLOWED,
        BOB: Access.CONDITIONAL,
        ROOT_A: Access.ALLOWED,
    }
    agree_with_decide(snapshot, found)
    bob = next(f for f in found if f.principal == BOB)
    assert bob.type is PrincipalType.USER
    [condition] = bob.conditions
    assert (condition.policy, condition.statement, condition.sid) == (f"{BOB}#office", 0, "Office")
    assert condition.condition == {"IpAddress": {"aws:SourceIp": ("10.0.0.0/8",)}}
    assert condition.keys == ("aws:sourceip",)
    assert bob.example == {"aws:sourceip": "10.0.0.0"}


def test_cross_account_grant_to_an_account_is_decided_for_its_principals_and_shown() -> None:
    snapshot = sample_snapshot()
    found = who_can(snapshot, "ecr:BatchGetImage", APP, now=NOW)
    assert decided(found) == {
        ALICE: Access.ALLOWED,
        CAROL: Access.ALLOWED,
        CI: Access.ALLOWED,
        BUILD: Access.ALLOWED,
        PARTNER: Access.ALLOWED,
        ROOT_A: Access.ALLOWED,
        ROOT_B: Access.ALLOWED,
    }
    grants = [f for f in found if not f.type.decided]
    assert [(g.principal, g.type, g.access) for g in grants] == [
        (ROOT_B, PrincipalType.ACCOUNT, Access.ALLOWED)
    ]
    assert grants[0].reasons[0].sid == "PartnerPull"
    assert grants[0].to_json()["decided"] is False
    agree_with_decide(snapshot, found)


def test_a_grant_to_anyone_reaches_every_principal_of_the_account_and_is_shown_as_such() -> None:
    snapshot = sample_snapshot()
    found = who_can(snapshot, "ecr:BatchGetImage", BASE, now=NOW)
    # IAM: in its own account a grant to `*` needs no identity policy (bob has none for pulls)
    assert decided(found) == {
        ALICE: Access.ALLOWED,
        BOB: Access.ALLOWED,
        CAROL: Access.ALLOWED,
        CI: Access.ALLOWED,
        BUILD: Access.ALLOWED,
        PARTNER: Access.ALLOWED,
        ROOT_A: Access.ALLOWED,
        ROOT_B: Access.ALLOWED,
    }
    assert [(f.principal, f.type) for f in found if not f.type.decided] == [
        ("*", PrincipalType.ANY_PRINCIPAL)
    ]
    agree_with_decide(snapshot, found)


def test_a_session_is_limited_by_its_session_policy() -> None:
    snapshot = sample_snapshot()
    found = who_can(snapshot, "ecr:GetDownloadUrlForLayer", APP, now=NOW)
    assert decided(found) == {ALICE: Access.ALLOWED, CI: Access.ALLOWED, ROOT_A: Access.ALLOWED}


def test_explicit_denials_are_listed_on_request_with_the_statement_that_denies() -> None:
    snapshot = sample_snapshot()
    assert ALICE not in decided(who_can(snapshot, "ecr:PutImage", LOCKED, now=NOW))
    found = who_can(snapshot, "ecr:PutImage", LOCKED, now=NOW, include_denied=True)
    alice = next(f for f in found if f.principal == ALICE)
    assert alice.access is Access.EXPLICITLY_DENIED
    assert [(r.policy, r.sid) for r in alice.reasons] == [(f"{ALICE}#team-a", "Locked")]


def test_a_service_control_policy_denies_everyone_the_root_user_too() -> None:
    snapshot = sample_snapshot()
    assert decided(who_can(snapshot, "ecr:DeleteRepository", APP, now=NOW)) == {}
    denied = who_can(snapshot, "ecr:DeleteRepository", APP, now=NOW, include_denied=True)
    assert {f.principal for f in denied} >= {ALICE, CAROL, ROOT_A}
    assert all(r.sid == "NoDeletes" for f in denied for r in f.reasons)


def test_an_action_without_a_repository_is_asked_about_star() -> None:
    snapshot = sample_snapshot()
    found = who_can(snapshot, "ecr:GetAuthorizationToken", "*", now=NOW)
    # carol's `ecr:*` stops at her boundary; alice's Resource names repositories, not `*`
    assert decided(found) == {ROOT_A: Access.ALLOWED, ROOT_B: Access.ALLOWED}
    assert all(f.repository == "*" for f in found)


def test_findings_serialize_to_one_json_object_each() -> None:
    found = who_can(sample_snapshot(), "ecr:PutImage", APP, now=NOW)
    bob = next(f for f in found if f.principal == BOB).to_json()
    assert bob["access"] == "Conditional"
    assert bob["revision"] == 4
    assert bob["conditions"] == [
        {
            "policy": f"{BOB}#office",
            "statement": 0,
            "sid": "Office",
            "effect": "Allow",
            "condition": {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8"]}},
            "keys": ["aws:sourceip"],
        }
    ]
    assert bob["example"] == {"aws:sourceip": "10.0.0.0"}
    assert "decided" not in bob


def test_partner_is_the_only_principal_of_account_b_with_a_policy() -> None:
    snapshot = sample_snapshot()
    assert {f.principal for f in who_can(snapshot, "ecr:PutImage", APP, now=NOW)}.isdisjoint(
        {PARTNER, f"arn:aws:iam::{B}:root"}
    )
