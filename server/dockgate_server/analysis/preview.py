"""What a change would change: every (principal, action, repository) whose access differs between
the fleet as stored and the fleet with a proposal applied, before anything is written.

The snapshot after the change is `engine.build.apply_delta` of the snapshot before, with a delta
naming only what the proposal touched. Only what the change can affect is decided again:

- a user or role whose own policies, groups' policies, managed policies or boundary changed (and
  the sessions acting for it): what it can do, before and after (`what_can`);
- a repository whose policy or tags changed: who can do each repository action on it, before and
  after (`who_can`);
- an account whose SCP levels or organization path changed: every principal of it; whose RCP
  levels changed: every repository of it, and every principal of it (an action without a
  repository is in the caller's account, under that account's RCPs);
- a service principal that only one side's repository policies name: what it can do, before and
  after (the other side's who-can does not list it).

A pair allowed (or conditional) on neither side is no change of access, even if its denial
changes from implicit to explicit; every other difference of `Access` is listed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from dockgate_server.analysis.assess import assess
from dockgate_server.analysis.catalogue import REPOSITORY_ACTIONS
from dockgate_server.analysis.directory import directory_of
from dockgate_server.analysis.finding import Access, ConditionalStatement, Finding, PrincipalType
from dockgate_server.analysis.proposal import Proposal, proposed_fleet
from dockgate_server.analysis.what import what_can
from dockgate_server.analysis.who import who_can
from dockgate_server.engine.build import PolicyMemo, apply_delta
from dockgate_server.engine.decision import Reason
from dockgate_server.engine.snapshot import Snapshot
from dockgate_server.store.model import Change, Delta, Document, Fleet, Organization

__all__ = ["AccessChange", "preview", "proposed_snapshot"]

_K = TypeVar("_K")
_V = TypeVar("_V")


@dataclass(frozen=True, slots=True)
class AccessChange:
    """One pair whose access the change would change; `reasons` and `conditions` say why it is
    what it would be after."""

    principal: str
    type: PrincipalType
    action: str
    repository: str
    before: Access
    after: Access
    revision: int
    """the revision the change is previewed against"""
    reasons: tuple[Reason, ...] = ()
    conditions: tuple[ConditionalStatement, ...] = ()

    @property
    def new_access(self) -> bool:
        """Whether the change allows what was not allowed before: from a denial to `Allowed` or
        `Conditional`, or from `Conditional` to `Allowed` (allowed in more contexts)."""
        if not self.after.grants:
            return False
        return not self.before.grants or (
            self.before is Access.CONDITIONAL and self.after is Access.ALLOWED
        )

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.principal, self.repository, self.action)

    def to_json(self) -> dict[str, object]:
        result: dict[str, object] = {
            "principal": self.principal,
            "type": str(self.type),
            "action": self.action,
            "repository": self.repository,
            "before": str(self.before),
            "after": str(self.after),
            "newAccess": self.new_access,
            "revision": self.revision,
            "reasons": [reason.to_json() for reason in self.reasons],
        }
        if not self.type.decided:
            result["decided"] = False
        if self.conditions:
            result["conditions"] = [found.to_json() for found in self.conditions]
        return result


def preview(
    snapshot: Snapshot, fleet: Fleet, proposal: Proposal, *, now: float | None = None
) -> list[AccessChange]:
    """Every change of access `proposal` would make to `fleet`, whose snapshot is `snapshot`,
    ordered by principal, repository, action. Raises `ProposalError`, `PolicyError` or
    `StoreError` for a proposal that cannot apply."""
    after_fleet = proposed_fleet(fleet, proposal)
    after, touched = proposed_snapshot(snapshot, fleet, after_fleet)
    principals, repositories = _affected(snapshot, after, (fleet, after_fleet), touched, now)
    changes: dict[tuple[str, str, str, bool], AccessChange] = {}
    for arn in sorted(principals):
        before_found = _by_key(what_can(snapshot, arn, now=now, examples=False))
        after_found = _by_key(what_can(after, arn, now=now, examples=False))
        _compare((snapshot, after), (before_found, after_found), changes, now)
    for repository in sorted(repositories):
        for action in REPOSITORY_ACTIONS:
            before_found = _by_key(who_can(snapshot, action, repository, now=now, examples=False))
            after_found = _by_key(who_can(after, action, repository, now=now, examples=False))
            _compare((snapshot, after), (before_found, after_found), changes, now)
    # keyed by whether decided too: a grant to an account shows beside its root, same ARN
    return [changes[key] for key in sorted(changes)]


def proposed_snapshot(snapshot: Snapshot, before: Fleet, after: Fleet) -> tuple[Snapshot, Change]:
    """The snapshot of `after`, from `snapshot` (of `before`) with only what differs rebuilt,
    at the same revision: nothing was written. Also the change: what differs."""
    delta = _delta(before, after, snapshot.revision)
    return apply_delta(snapshot, delta, PolicyMemo()), delta.change


# -- what differs -------------------------------------------------------------------------------


def _delta(before: Fleet, after: Fleet, revision: int) -> Delta:
    users = _changed({u.key: u for u in before.users}, {u.key: u for u in after.users})
    roles = _changed({r.key: r for r in before.roles}, {r.key: r for r in after.roles})
    groups = _changed(
        {(g.account, g.name): g for g in before.groups},
        {(g.account, g.name): g for g in after.groups},
    )
    policies = _changed({p.arn: p for p in before.policies}, {p.arn: p for p in after.policies})
    changed_policies = set(policies)
    after_groups = {(g.account, g.name): g for g in after.groups}
    for user in after.users:
        # a user compiles its groups' policies and its managed policies: a change there is its
        attached = {*user.attached, *([user.boundary] if user.boundary else [])}
        for name in user.groups:
            group = after_groups.get((user.account, name))
            attached |= set(group.attached) if group is not None else set()
        in_changed_group = any((user.account, name) in groups for name in user.groups)
        if in_changed_group or attached & changed_policies:
            users[user.key] = user
    for role in after.roles:
        attached = {*role.attached, *([role.boundary] if role.boundary else [])}
        if attached & changed_policies:
            roles[role.key] = role
    repositories = _changed(
        {r.arn: r for r in before.repositories}, {r.arn: r for r in after.repositories}
    )
    organization = before.organization != after.organization
    change = Change(
        revision,
        frozenset({*users, *roles}),
        frozenset(repositories),
        organization=organization,
    )
    return Delta(
        change,
        revision,
        after.accounts,
        users,
        roles,
        after_groups,
        {p.arn: p for p in after.policies},
        repositories,
        after.organization if organization else None,
    )


def _changed(before: Mapping[_K, _V], after: Mapping[_K, _V]) -> dict[_K, _V | None]:
    """Each key whose entry differs, with its entry after (None: removed)."""
    return {
        key: after.get(key)
        for key in (*before, *(k for k in after if k not in before))
        if before.get(key) != after.get(key)
    }


def _affected(
    before: Snapshot,
    after: Snapshot,
    fleets: tuple[Fleet, Fleet],
    change: Change,
    now: float | None,
) -> tuple[set[str], set[str]]:
    """The principal ARNs and repository ARNs whose access the change can alter."""
    principals: set[str] = set()
    repositories = set(change.repositories)
    directories = (directory_of(before, now), directory_of(after, now))
    for directory in directories:
        for key in change.principals:
            view = directory.snapshot.users.get(key) or directory.snapshot.roles.get(key)
            if view is not None:
                principals.add(view.arn)
            principals.update(session.arn for session in directory.acting_for.get(key, ()))
    # a service principal is one of the store's while a repository policy names it: one the
    # change names first, or names no more, is decided on both sides (a grant to `*` reaches
    # it, yet only the directory that knows it lists it)
    named_before, named_after = ({s.arn for s in d.services} for d in directories)
    principals |= named_before ^ named_after
    scp_accounts, rcp_accounts = _organization_changes(*fleets)
    # IAM: an action without a repository is in the caller's account, under its RCPs too
    for account in {*before.accounts ^ after.accounts, *scp_accounts, *rcp_accounts}:
        for directory in directories:
            principals.update(p.arn for p in directory.by_account.get(account, ()))
    for account in rcp_accounts:
        for directory in directories:
            repositories.update(directory.repositories_by_account.get(account, ()))
    return principals, repositories


def _organization_changes(before: Fleet, after: Fleet) -> tuple[set[str], set[str]]:
    """The accounts whose SCP levels, and those whose RCP levels, differ (a change of place in
    the organization changes both: `aws:PrincipalOrgPaths` and `aws:ResourceOrgPaths`)."""
    if before.organization == after.organization:
        return set(), set()
    scp: set[str] = set()
    rcp: set[str] = set()
    accounts = {*before.accounts, *after.accounts}
    accounts |= _members(before.organization) | _members(after.organization)
    for account in accounts:
        old = _chain(before.organization, account)
        new = _chain(after.organization, account)
        if [(n, s) for n, s, _ in old] != [(n, s) for n, s, _ in new]:
            scp.add(account)
        if [(n, r) for n, _, r in old] != [(n, r) for n, _, r in new]:
            rcp.add(account)
    if (
        before.organization is None
        or after.organization is None
        or (before.organization.id != after.organization.id)
    ):
        scp |= accounts  # `aws:PrincipalOrgID` and `aws:ResourceOrgID` change for every member
        rcp |= accounts
    return scp, rcp


_Chain = list[tuple[str, tuple[Document, ...], tuple[Document, ...]]]


def _chain(organization: Organization | None, account: str) -> _Chain:
    if organization is None:
        return []
    path = organization.path_to(account) or ()
    return [(node.id, node.service_control, node.resource_control) for node in path]


def _members(organization: Organization | None) -> set[str]:
    if organization is None:
        return set()
    found: set[str] = set()
    pending = [organization.root]
    while pending:
        node = pending.pop()
        found.update(node.accounts)
        pending.extend(node.children)
    return found


# -- comparing ----------------------------------------------------------------------------------


_Found = dict[tuple[str, str, str, bool], Finding]


def _by_key(findings: Iterable[Finding]) -> _Found:
    """Findings by principal, repository, action and whether decided; of a grant shown several
    times (several statements), the widest."""
    found: _Found = {}
    for finding in findings:
        key = (*finding.key, finding.type.decided)
        kept = found.get(key)
        if kept is None or (kept.access is Access.CONDITIONAL and finding.access is Access.ALLOWED):
            found[key] = finding
    return found


def _compare(
    snapshots: tuple[Snapshot, Snapshot],
    found: tuple[_Found, _Found],
    changes: dict[tuple[str, str, str, bool], AccessChange],
    now: float | None,
) -> None:
    before, after = snapshots
    before_found, after_found = found
    for key in before_found.keys() | after_found.keys():
        old = before_found.get(key) or _missing(before, after_found[key], now)
        new = after_found.get(key) or _missing(after, before_found[key], now)
        if old.access is new.access:
            continue
        changes[key] = AccessChange(
            new.principal,
            new.type,
            new.action,
            new.repository,
            old.access,
            new.access,
            before.revision,
            new.reasons,
            new.conditions,
        )


def _missing(snapshot: Snapshot, other: Finding, now: float | None) -> Finding:
    """The finding on the side that did not list `other`'s pair: decided there, or, for a grant
    the policy does not make there, none."""
    if not other.type.decided:
        return Finding(
            other.principal,
            other.type,
            other.action,
            other.repository,
            Access.IMPLICITLY_DENIED,
            snapshot.revision,
        )
    return assess(
        snapshot,
        other.principal,
        other.type,
        other.action,
        other.repository,
        now=now,
        examples=False,
    )
