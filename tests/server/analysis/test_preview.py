"""Preview: the access a proposed policy or bundle would change, from what to what."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from dockgate_server.analysis import (
    Access,
    AccessChange,
    BundleProposal,
    PolicyProposal,
    PrincipalType,
    ProposalError,
    preview,
    proposed_fleet,
    proposed_snapshot,
)
from dockgate_server.engine.build import build_snapshot
from dockgate_server.policy.findings import PolicyError
from dockgate_server.policy.model import PolicyKind
from dockgate_server.store.model import Credentials, Fleet, Organization, OrgNode, Repository, User
from tests.server.analysis.sample import (
    ALICE,
    APP,
    BASE,
    BOB,
    CAROL,
    LOCKED,
    NOW,
    A,
    B,
    allow,
    document,
    sample_credentials,
    sample_fleet,
    sample_snapshot,
)
from tests.server.analysis.test_properties import brute_force, every_pair, universe


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


def test_a_service_the_change_no_longer_names_is_still_decided_after_it() -> None:
    # the property test's find: after the change no policy names codebuild, so the directory
    # after it does not list the service, yet the grant to `*` reaches it
    service = "codebuild.amazonaws.com"
    named = document(
        {"Effect": "Deny", "Principal": {"Service": service}, "Action": "ecr:*"},
    )
    fleet = sample_fleet()
    fleet = dataclasses.replace(
        fleet,
        repositories=tuple(
            dataclasses.replace(r, policy=named) if r.arn == LOCKED else r
            for r in fleet.repositories
        ),
    )
    snapshot = build_snapshot(fleet, sample_credentials(), 7)
    to_anyone = document({"Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"})
    found = preview(
        snapshot, fleet, PolicyProposal(to_anyone, PolicyKind.REPOSITORY, LOCKED), now=NOW
    )
    change = next(c for c in found if c.key == (service, LOCKED, "ecr:BatchGetImage"))
    assert (change.type, change.before, change.after, change.new_access) == (
        PrincipalType.SERVICE,
        Access.EXPLICITLY_DENIED,
        Access.ALLOWED,
        True,
    )


@pytest.mark.parametrize(
    "condition",
    [None, {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}],
    ids=["always", "conditional"],
)
def test_a_resource_control_policy_at_the_root_is_previewed_as_deciding_every_pair_finds(
    condition: dict[str, Any] | None,
) -> None:
    # the shape of the property test's report: an RCP at `r-root` denying `*` to `*`, over
    # principals of both member accounts, a service and a grant to `*`
    full = document({"Effect": "Allow", "Action": "*", "Resource": "*"})
    open_to_all = document(
        {"Effect": "Allow", "Principal": "*", "Action": "ecr:*"},
        {"Effect": "Allow", "Principal": {"Service": "codebuild.amazonaws.com"}, "Action": "ecr:*"},
    )
    fleet = Fleet(
        (A, B),
        (User(A, "alice", inline={"p": full}), User(B, "bob", inline={"p": full})),
        repositories=(Repository(APP, {}, open_to_all),),
        organization=Organization(
            "o-example",
            OrgNode("r-root", (full,), (), (A,), (OrgNode("ou-1", (full,), (), (B,)),)),
        ),
    )
    deny: dict[str, Any] = {
        "Effect": "Deny",
        "Action": ["ecr:*"],
        "Resource": "*",
        "Principal": "*",
    }
    if condition is not None:
        deny["Condition"] = condition
    proposal = PolicyProposal(document(deny), PolicyKind.RCP, "r-root")
    before = build_snapshot(fleet, Credentials(), 3)
    after_fleet = proposed_fleet(fleet, proposal)
    after = build_snapshot(after_fleet, Credentials(), 3)
    principals = universe(fleet, Credentials(), before)
    pairs = every_pair(after_fleet)
    old = brute_force(before, principals, pairs)
    new = brute_force(after, principals, pairs)
    wanted = {
        key: (old[key], new[key])
        for key in old
        if old[key] is not new[key] and (old[key].grants or new[key].grants)
    }
    found = preview(before, fleet, proposal, now=NOW)
    assert {c.key: (c.before, c.after) for c in found if c.type.decided} == wanted
    assert ("codebuild.amazonaws.com", APP, "ecr:PutImage") in wanted
    assert (f"arn:aws:iam::{B}:user/bob", "*", "ecr:GetAuthorizationToken") in wanted
