"""Every analysis answer is the brute-force one: who-can and what-can equal assessing every
principal, repository and action of a generated fleet, and a preview equals assessing every pair
before and after the change on snapshots compiled from scratch.

`assess` is checked against `decide` itself (tests/server/engine/test_partial.py), and a survey
(what-can's shared decisions) against `assess` (test_survey.py); here the narrowing is: a
candidate the index leaves out is an answer lost.

A failure is reported as drawn, not shrunk (shrinking one costs minutes), with a blob for
`@reproduce_failure`; `DOCKGATE_PROPERTY_SCALE=10` runs ten times the examples, to hunt.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import Phase, event, given, settings
from hypothesis import strategies as st

from dockgate_server.analysis import (
    ACCOUNT_ACTIONS,
    REPOSITORY_ACTIONS,
    Access,
    PolicyProposal,
    PrincipalType,
    preview,
    proposed_fleet,
    what_can,
    who_can,
)
from dockgate_server.analysis.assess import assess
from dockgate_server.engine.build import build_snapshot
from dockgate_server.engine.snapshot import Snapshot
from dockgate_server.policy.model import PolicyKind
from dockgate_server.store.model import Credentials, Fleet, Session
from tests.server.engine.test_snapshot_properties import (
    SETTINGS,
    documents,
    fleets,
    principal_tags,
    repository_arn,
)

PROPERTY_SETTINGS = settings(
    SETTINGS,
    # a failing example is reported as drawn, with the blob that replays it: shrinking one
    # decides every pair of the fleet again per attempt, thousands of attempts (minutes)
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    print_blob=True,
)
SCALE = float(os.environ.get("DOCKGATE_PROPERTY_SCALE", "1"))
"""examples per property test, times this: raise it to hunt for a rare failure"""
NOW = 1_700_000_000.0
A = "111122223333"
GHOST = repository_arn(A, "us-east-1", "ghost")
"""a repository the store does not hold: identity policies may still reach it"""
SOME_ACTIONS = (
    "ecr:BatchGetImage",
    "ecr:PutImage",
    "ecr:DescribeImages",
    "ecr:SetRepositoryPolicy",
    "ecr:TagResource",
)


@st.composite
def credentials(draw: st.DrawFn, fleet: Fleet) -> Credentials:
    """Sessions Dockgate issued: of some roles, for some users, now and then one expired."""
    sessions = []
    for role in fleet.roles:
        if draw(st.booleans()):
            sessions.append(
                Session(
                    f"arn:aws:sts::{role.account}:assumed-role/{role.name}/issued",
                    "id",
                    role.key,
                    f"arn:aws:iam::{role.account}:root",
                    NOW - 60,
                    NOW + (3600 if draw(st.integers(0, 4)) else -1),
                    draw(st.none() | documents("identity", 2)),
                    draw(principal_tags),
                )
            )
    for user in fleet.users:
        if draw(st.integers(0, 2)) == 0:
            sessions.append(
                Session(
                    f"arn:aws:sts::{user.account}:federated-user/{user.name}",
                    "id",
                    user.key,
                    user.arn,
                    NOW - 60,
                    NOW + 3600,
                    draw(documents("identity", 2)),
                )
            )
    return Credentials(tuple(sessions))


def universe(fleet: Fleet, issued: Credentials, snapshot: Snapshot) -> dict[str, PrincipalType]:
    """Every principal of the store, found from the fleet, not from the analysis' directory (a
    root user lives in its account's partition)."""
    found = {user.arn: PrincipalType.USER for user in fleet.users}
    found.update({role.arn: PrincipalType.ROLE for role in fleet.roles})
    for session in issued.sessions:
        if session.expires_at > NOW:
            kind = ":assumed-role/" in session.arn
            found[session.arn] = PrincipalType.SESSION if kind else PrincipalType.FEDERATED_USER
    for account in fleet.accounts:
        found[f"arn:{snapshot.partition_of(account)}:iam::{account}:root"] = PrincipalType.ROOT
    for repository in fleet.repositories:
        for statement in (repository.policy or {}).get("Statement", []):
            principal = statement.get("Principal")
            if isinstance(principal, dict) and "Service" in principal:
                found[principal["Service"].lower()] = PrincipalType.SERVICE
    return found


def brute_force(
    snapshot: Snapshot, principals: dict[str, PrincipalType], pairs: list[tuple[str, str]]
) -> dict[tuple[str, str, str], Access]:
    """(principal, repository, action) → access, for every principal and pair."""
    return {
        (principal, resource, action): assess(
            snapshot, principal, kind, action, resource, now=NOW, examples=False
        ).access
        for principal, kind in principals.items()
        for resource, action in pairs
    }


def every_pair(
    fleet: Fleet, actions: tuple[str, ...] = REPOSITORY_ACTIONS
) -> list[tuple[str, str]]:
    pairs = [(r.arn, a) for r in fleet.repositories for a in actions]
    return pairs + [("*", a) for a in ACCOUNT_ACTIONS]


@settings(PROPERTY_SETTINGS, max_examples=int(80 * SCALE))
@given(data=st.data(), fleet=fleets())
def test_who_can_and_what_can_equal_brute_force(data: st.DataObject, fleet: Fleet) -> None:
    issued = data.draw(credentials(fleet), label="credentials")
    snapshot = build_snapshot(fleet, issued, 3)
    principals = universe(fleet, issued, snapshot)
    repositories = [r.arn for r in fleet.repositories] + [GHOST]
    pairs = [(r, a) for r in repositories for a in SOME_ACTIONS]
    pairs += [("*", "ecr:GetAuthorizationToken"), ("*", "ecr:DescribeRegistry")]
    expected = brute_force(snapshot, principals, pairs)
    for resource, action in pairs:
        found = who_can(snapshot, action, resource, now=NOW, examples=False)
        decided = {f.principal: f.access for f in found if f.type.decided}
        wanted = {
            p: access for (p, r, a), access in expected.items() if (r, a) == (resource, action)
        }
        assert decided == {p: access for p, access in wanted.items() if access.grants}, (
            action,
            resource,
        )
        event(f"who-can: {len(decided)} allowed")
        assert [f.principal for f in found] == sorted(f.principal for f in found)
    chosen = data.draw(
        st.lists(st.sampled_from(sorted(principals)), max_size=3, unique=True), label="principals"
    )
    everything = every_pair(fleet)
    for principal in chosen:
        wanted_pairs = {
            (r, a)
            for (r, a), access in (
                ((r, a), access)
                for (p, r, a), access in brute_force(
                    snapshot, {principal: principals[principal]}, everything
                ).items()
            )
            if access.grants
        }
        found = what_can(snapshot, principal, now=NOW, examples=False)
        assert {(f.repository, f.action) for f in found} == wanted_pairs, principal
        assert [(f.repository, f.action) for f in found] == sorted(wanted_pairs)


@st.composite
def proposals(draw: st.DrawFn, fleet: Fleet) -> PolicyProposal | None:
    options: list[tuple[PolicyKind, str]] = []
    options += [(PolicyKind.IDENTITY, user.arn) for user in fleet.users]
    options += [(PolicyKind.IDENTITY, role.arn) for role in fleet.roles]
    options += [(PolicyKind.BOUNDARY, user.arn) for user in fleet.users]
    options += [(PolicyKind.REPOSITORY, r.arn) for r in fleet.repositories]
    if fleet.organization is not None:
        options += [(PolicyKind.SCP, "ou-1"), (PolicyKind.RCP, fleet.organization.root.id)]
    if not options:
        return None
    kind, target = draw(st.sampled_from(options))
    source = {
        PolicyKind.IDENTITY: "identity",
        PolicyKind.BOUNDARY: "identity",
        PolicyKind.REPOSITORY: "repository",
        PolicyKind.SCP: "scp",
        PolicyKind.RCP: "rcp",
    }[kind]
    document: dict[str, Any] = draw(documents(source, 2))
    return PolicyProposal(document, kind, target)


@settings(PROPERTY_SETTINGS, max_examples=int(80 * SCALE))
@given(data=st.data(), fleet=fleets())
def test_preview_equals_deciding_every_pair_before_and_after(
    data: st.DataObject, fleet: Fleet
) -> None:
    issued = data.draw(credentials(fleet), label="credentials")
    proposal = data.draw(proposals(fleet), label="proposal")
    if proposal is None:
        return
    before = build_snapshot(fleet, issued, 3)
    after_fleet = proposed_fleet(fleet, proposal)
    after = build_snapshot(after_fleet, issued, 3)  # from scratch, not from the delta
    principals = universe(fleet, issued, before) | universe(after_fleet, issued, after)
    pairs = every_pair(after_fleet)
    old = brute_force(before, principals, pairs)
    new = brute_force(after, principals, pairs)
    wanted = {
        key: (old[key], new[key])
        for key in old
        if old[key] is not new[key] and (old[key].grants or new[key].grants)
    }
    changes = preview(before, fleet, proposal, now=NOW)
    found = {c.key: (c.before, c.after) for c in changes if c.type.decided}
    event(f"preview: {proposal.kind}, {'some' if wanted else 'no'} changes")
    assert found == wanted, proposal
    assert [c.key for c in changes] == sorted(c.key for c in changes)
    for change in changes:
        assert change.new_access == (
            change.after.grants
            and (not change.before.grants or change.before is Access.CONDITIONAL)
            and change.after is not change.before
        )
