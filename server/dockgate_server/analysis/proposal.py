"""A proposed change to the fleet, and the fleet it would make: nothing is written anywhere.

A proposal is a bundle (merged as `dockgate import` merges it: its entities replace their stored
versions), or one policy of a kind, attached to a target:

- identity: a user, role or group ARN (the policy becomes its inline policy `proposed`), or a
  managed policy ARN (the policy becomes its default version, `proposed`);
- boundary: a user or role ARN (a new managed policy, `proposed-boundary`, becomes its
  boundary), or a managed policy ARN (as for identity);
- repository: a repository ARN (the policy replaces its repository policy);
- scp, rcp: an organization root or unit ID, or an account ID (the node listing it): the policy
  is attached there beside the others.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar

from dockgate_server.policy.model import PolicyKind
from dockgate_server.policy.parse import parse_policy
from dockgate_server.store.model import (
    Document,
    Fleet,
    Group,
    ManagedPolicy,
    Organization,
    OrgNode,
    Role,
    User,
)
from dockgate_server.store.validate import StoreError, validate_write

__all__ = [
    "PROPOSED_NAME",
    "BundleProposal",
    "PolicyProposal",
    "Proposal",
    "ProposalError",
    "proposed_fleet",
]

_E = TypeVar("_E")
_Entity = TypeVar("_Entity", User, Role, Group)

PROPOSED_NAME = "proposed"
"""the name a proposed inline policy, policy version or boundary policy takes"""


class ProposalError(ValueError):
    """A proposal that cannot apply: its target is not in the fleet, or the result is invalid."""


@dataclass(frozen=True, slots=True)
class BundleProposal:
    fleet: Fleet


@dataclass(frozen=True, slots=True)
class PolicyProposal:
    document: Document
    kind: PolicyKind
    target: str


Proposal = BundleProposal | PolicyProposal

_KINDS = (
    PolicyKind.IDENTITY,
    PolicyKind.BOUNDARY,
    PolicyKind.REPOSITORY,
    PolicyKind.SCP,
    PolicyKind.RCP,
)


def proposed_fleet(fleet: Fleet, proposal: Proposal) -> Fleet:
    """`fleet` with `proposal` applied; `ProposalError` (or `PolicyError`, `StoreError`) when it
    cannot be."""
    if isinstance(proposal, BundleProposal):
        return _merged(fleet, proposal.fleet)
    if proposal.kind not in _KINDS:
        raise ProposalError(f"kind `{proposal.kind}`: not one a proposal can have")
    parse_policy(proposal.document, kind=proposal.kind, name=PROPOSED_NAME)
    apply = _APPLY[proposal.kind]
    return apply(fleet, proposal.document, proposal.target)


def _merged(fleet: Fleet, bundle: Fleet) -> Fleet:
    stored_groups = {(group.account, group.name) for group in fleet.groups}
    try:
        validate_write(bundle, {policy.arn for policy in fleet.policies}, stored_groups)
    except StoreError as problem:
        raise ProposalError(str(problem)) from None
    return Fleet(
        tuple(dict.fromkeys((*fleet.accounts, *bundle.accounts))),
        _replaced(fleet.users, bundle.users, lambda u: u.key),
        _replaced(fleet.groups, bundle.groups, lambda g: g.key),
        _replaced(fleet.roles, bundle.roles, lambda r: r.key),
        _replaced(fleet.policies, bundle.policies, lambda p: p.arn),
        _replaced(fleet.repositories, bundle.repositories, lambda r: r.arn),
        bundle.organization if bundle.organization is not None else fleet.organization,
    )


def _replaced(
    stored: tuple[_E, ...], given: tuple[_E, ...], key: Callable[[_E], str]
) -> tuple[_E, ...]:
    entries = {key(entry): entry for entry in stored}
    entries.update((key(entry), entry) for entry in given)
    return tuple(entries.values())


def _identity(fleet: Fleet, document: Document, target: str) -> Fleet:
    if ":policy/" in target:
        return _new_version(fleet, document, target)
    user = _find(fleet.users, target)
    if user is not None:
        inline = {**user.inline, PROPOSED_NAME: document}
        return _with(
            fleet, users=_swap(fleet.users, user, dataclasses.replace(user, inline=inline))
        )
    role = _find(fleet.roles, target)
    if role is not None:
        inline = {**role.inline, PROPOSED_NAME: document}
        return _with(
            fleet, roles=_swap(fleet.roles, role, dataclasses.replace(role, inline=inline))
        )
    group = _find(fleet.groups, target)
    if group is not None:
        inline = {**group.inline, PROPOSED_NAME: document}
        changed = dataclasses.replace(group, inline=inline)
        return _with(fleet, groups=_swap(fleet.groups, group, changed))
    raise _missing(target, "a user, role, group or managed policy")


def _boundary(fleet: Fleet, document: Document, target: str) -> Fleet:
    if ":policy/" in target:
        return _new_version(fleet, document, target)
    entity: User | Role | None = _find(fleet.users, target) or _find(fleet.roles, target)
    if entity is None:
        raise _missing(target, "a user, role or managed policy")
    arn = f"arn:{entity.partition}:iam::{entity.account}:policy/{PROPOSED_NAME}-boundary"
    policy = ManagedPolicy(arn, f"{PROPOSED_NAME}-boundary", "/", "v1", {"v1": document})
    policies = (*(p for p in fleet.policies if p.arn != arn), policy)
    if isinstance(entity, User):
        users = _swap(fleet.users, entity, dataclasses.replace(entity, boundary=arn))
        return _with(fleet, users=users, policies=policies)
    roles = _swap(fleet.roles, entity, dataclasses.replace(entity, boundary=arn))
    return _with(fleet, roles=roles, policies=policies)


def _repository(fleet: Fleet, document: Document, target: str) -> Fleet:
    found = next((r for r in fleet.repositories if r.arn == target), None)
    if found is None:
        raise _missing(target, "a repository ARN")
    changed = dataclasses.replace(found, policy=document)
    return _with(fleet, repositories=_swap(fleet.repositories, found, changed))


def _service_control(fleet: Fleet, document: Document, target: str) -> Fleet:
    return _organization_policy(fleet, document, target, "service_control")


def _resource_control(fleet: Fleet, document: Document, target: str) -> Fleet:
    return _organization_policy(fleet, document, target, "resource_control")


def _organization_policy(
    fleet: Fleet,
    document: Document,
    target: str,
    field: Literal["service_control", "resource_control"],
) -> Fleet:
    organization = fleet.organization
    if organization is None:
        raise ProposalError(f"target `{target}`: the fleet has no organization")
    found = False

    def visit(node: OrgNode) -> OrgNode:
        nonlocal found
        children = tuple(visit(child) for child in node.children)
        if node.id == target or target in node.accounts:
            found = True
            if field == "service_control":
                scps = (*node.service_control, document)
                return dataclasses.replace(node, children=children, service_control=scps)
            rcps = (*node.resource_control, document)
            return dataclasses.replace(node, children=children, resource_control=rcps)
        return dataclasses.replace(node, children=children)

    root = visit(organization.root)
    if not found:
        raise _missing(target, "an organization root or unit ID, or an account in it")
    return _with(fleet, organization=Organization(organization.id, root))


def _new_version(fleet: Fleet, document: Document, target: str) -> Fleet:
    policy = next((p for p in fleet.policies if p.arn == target), None)
    if policy is None:
        raise _missing(target, "a managed policy ARN")
    versions = {**policy.versions, PROPOSED_NAME: document}
    changed = dataclasses.replace(policy, versions=versions, default_version=PROPOSED_NAME)
    return _with(fleet, policies=_swap(fleet.policies, policy, changed))


_APPLY: Mapping[PolicyKind, Callable[[Fleet, Document, str], Fleet]] = {
    PolicyKind.IDENTITY: _identity,
    PolicyKind.BOUNDARY: _boundary,
    PolicyKind.REPOSITORY: _repository,
    PolicyKind.SCP: _service_control,
    PolicyKind.RCP: _resource_control,
}


def _find(entities: tuple[_Entity, ...], arn: str) -> _Entity | None:
    return next((entity for entity in entities if entity.arn == arn), None)


def _swap(entities: tuple[_E, ...], old: _E, new: _E) -> tuple[_E, ...]:
    return tuple(new if entity is old else entity for entity in entities)


def _with(fleet: Fleet, **changes: object) -> Fleet:
    return dataclasses.replace(fleet, **changes)  # type: ignore[arg-type]


def _missing(target: str, wanted: str) -> ProposalError:
    return ProposalError(f"target `{target}`: not in the store (give {wanted})")
