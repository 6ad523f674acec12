"""Preview: the access a proposed policy or bundle would change, from what to what."""

from __future__ import annotations

import dataclasses

import pytest

from dockgate_server.analysis import (
    Access,
    AccessChange,
    BundleProposal,
    PolicyProposal,
    PrincipalType,
    ProposalError,
    preview,
    proposed_snapshot,
)
from dockgate_server.engine.build import build_snapshot
from dockgate_server.policy.findings import PolicyError
from dockgate_server.policy.model import PolicyKind
from dockgate_server.store.model import Fleet, User
from tests.server.analysis.sample import (
    ALICE,
    APP,
    BASE,
    BOB,
    CAROL,
    LOCKED,
    NOW,
    A,
    allow,
    document,
    sample_credentials,
    sample_fleet,
    sample_snapshot,
)


def changes(proposal: PolicyProposal | BundleProposal) -> dict[tuple[str, str, str], AccessChange]:
    found = preview(sample_snapshot(), sample_fleet(), proposal, now=NOW)
    return {change.key: change for change in found if change.type.decided}


def test_opening_a_repository_to_anyone_is_new_access_for_every_principal_it_reaches() -> None:
    policy = document(
        {"Sid": "Open", "Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"}
    )
    found = preview(
        sample_snapshot(),
        sample_fleet(),
        PolicyProposal(policy, PolicyKind.REPOSITORY, LOCKED),
        now=NOW,
    )
    by_key = {c.key: c for c in found if c.type.decided}
    bob = by_key[(BOB, LOCKED, "ecr:BatchGetImage")]
    assert (bob.before, bob.after, bob.new_access) == (
        Access.IMPLICITLY_DENIED,
        Access.ALLOWED,
        True,
    )
    assert bob.reasons[0].sid == "Open"
    # alice and carol could pull it already: no change
    assert (ALICE, LOCKED, "ecr:BatchGetImage") not in by_key
    assert (CAROL, LOCKED, "ecr:BatchGetImage") not in by_key
    shown = [c for c in found if not c.type.decided]
    assert [(c.principal, c.type, c.after) for c in shown] == [
        ("*", PrincipalType.ANY_PRINCIPAL, Access.ALLOWED)
    ]
    assert all(c.repository == LOCKED for c in found)


def test_a_service_control_policy_that_denies_takes_access_away_and_is_not_new_access() -> None:
    deny = document({"Effect": "Deny", "Action": "ecr:PutImage", "Resource": "*"})
    found = changes(PolicyProposal(deny, PolicyKind.SCP, A))
    alice = found[(ALICE, APP, "ecr:PutImage")]
    assert (alice.before, alice.after, alice.new_access) == (
        Access.ALLOWED,
        Access.EXPLICITLY_DENIED,
        False,
    )
    bob = found[(BOB, APP, "ecr:PutImage")]
    assert (bob.before, bob.after) == (Access.CONDITIONAL, Access.EXPLICITLY_DENIED)
    assert not any(change.new_access for change in found.values())


def test_a_wider_boundary_gives_new_access_within_the_identity_policy() -> None:
    wider = document(allow(["ecr:BatchGetImage", "ecr:PutImage"]))
    found = changes(PolicyProposal(wider, PolicyKind.BOUNDARY, CAROL))
    assert {key for key, change in found.items() if change.new_access} == {
        (CAROL, repository, "ecr:PutImage") for repository in (APP, LOCKED, BASE)
    }


def test_an_identity_policy_for_a_user_and_the_bundle_that_says_the_same_agree() -> None:
    grant = document(allow("ecr:PutImage", LOCKED))
    by_policy = changes(PolicyProposal(grant, PolicyKind.IDENTITY, CAROL))
    assert by_policy == {}  # her pull-only boundary still stops pushes
    user = next(u for u in sample_fleet().users if u.name == "bob")
    bundle = Fleet((A,), (dataclasses.replace(user, inline={"only": grant}),))
    by_bundle = changes(BundleProposal(bundle))
    # bob loses his conditional push everywhere but LOCKED, where it becomes unconditional
    locked = by_bundle.pop((BOB, LOCKED, "ecr:PutImage"))
    assert (locked.before, locked.after, locked.new_access) == (
        Access.CONDITIONAL,
        Access.ALLOWED,
        True,
    )
    assert {(c.before, c.after) for c in by_bundle.values()} == {
        (Access.CONDITIONAL, Access.IMPLICITLY_DENIED)
    }


def test_the_snapshot_after_decides_as_one_compiled_from_scratch() -> None:
    before = sample_snapshot()
    fleet = sample_fleet()
    user = User(A, "dave", inline={"p": document(allow("ecr:*"))})
    after_fleet = dataclasses.replace(fleet, users=(*fleet.users, user))
    after, change = proposed_snapshot(before, fleet, after_fleet)
    assert change.principals == {f"user/{A}/dave"}
    assert after.revision == before.revision
    fresh = build_snapshot(after_fleet, sample_credentials(), before.revision)
    dave = f"arn:aws:iam::{A}:user/dave"
    assert after.authorize(dave, "ecr:PutImage", APP) == fresh.authorize(dave, "ecr:PutImage", APP)
    assert before.users.keys() < after.users.keys()


def test_a_proposal_that_cannot_apply_says_why() -> None:
    with pytest.raises(ProposalError, match="target `arn:aws:iam::111122223333:user/nobody`"):
        preview(
            sample_snapshot(),
            sample_fleet(),
            PolicyProposal(
                document(allow("ecr:*")), PolicyKind.IDENTITY, f"arn:aws:iam::{A}:user/nobody"
            ),
        )
    with pytest.raises(PolicyError):
        preview(
            sample_snapshot(),
            sample_fleet(),
            PolicyProposal({"Statement": []}, PolicyKind.IDENTITY, ALICE),
        )


def test_changes_serialize_with_new_access() -> None:
    deny = document({"Effect": "Deny", "Action": "ecr:PutImage", "Resource": "*"})
    change = changes(PolicyProposal(deny, PolicyKind.SCP, "ou-unit"))[(ALICE, APP, "ecr:PutImage")]
    line = change.to_json()
    assert {k: line[k] for k in ("before", "after", "newAccess", "revision")} == {
        "before": "Allowed",
        "after": "ExplicitlyDenied",
        "newAccess": False,
        "revision": 4,
    }
