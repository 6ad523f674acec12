"""Validate fleet entities before anything is written: every policy, every reference, every name."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace

from dockgate_server.policy.arn import is_account_id, split_arn
from dockgate_server.policy.model import PolicyKind
from dockgate_server.policy.parse import parse_policy
from dockgate_server.store.errors import Refused, StoreError
from dockgate_server.store.model import (
    Document,
    Fleet,
    Group,
    ManagedPolicy,
    OrgNode,
    Repository,
    Role,
    User,
)

__all__ = [
    "StoreError",
    "check_document",
    "check_repository",
    "validate_fleet",
    "validate_write",
]

# ECR's repository name pattern (API reference), 2 to 256 characters
_REPOSITORY_NAME = re.compile(r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*")
_IAM_NAME = re.compile(r"[\w+=,.@-]{1,128}")
_IAM_PATH = re.compile(r"/(?:[\x21-\x7e]+/)?")


def check_document(document: Document, kind: PolicyKind, name: str) -> None:
    """Raise `PolicyError` (a ValueError) naming `name` and the pointer when invalid."""
    parse_policy(document, kind=kind, name=name)


def validate_fleet(fleet: Fleet, known_policies: Iterable[str] = ()) -> None:
    """Check every entity of `fleet`; `known_policies` are managed-policy ARNs already stored."""
    policies = {policy.arn for policy in fleet.policies} | set(known_policies)
    groups = {(group.account, group.name) for group in fleet.groups}
    for account in fleet.accounts:
        _check_account(account, "bundle")
    _check_unique(fleet)
    for policy in fleet.policies:
        _check_managed(policy)
    for group in fleet.groups:
        _check_group(group, policies)
    for user in fleet.users:
        _check_user(user, policies, groups)
    for role in fleet.roles:
        _check_role(role, policies)
    for repository in fleet.repositories:
        check_repository(repository)
    if fleet.organization is not None:
        _check_node(fleet.organization.root, f"organization `{fleet.organization.id}`")


def validate_write(
    fleet: Fleet, known_policies: Iterable[str], stored_groups: set[tuple[str, str]] | None = None
) -> None:
    """`validate_fleet` for a write into a store that already holds the (account, name) of
    `stored_groups`: a user of `fleet` may be a member of those too."""
    if stored_groups:
        listed = {(group.account, group.name) for group in fleet.groups}
        stand_ins = tuple(Group(account, name) for account, name in stored_groups - listed)
        fleet = replace(fleet, groups=fleet.groups + stand_ins)
    validate_fleet(fleet, known_policies)


def _check_unique(fleet: Fleet) -> None:
    """IAM names are unique per account (role names ignoring case); a second one is an error,
    never a silent replacement of the first."""
    keys: list[tuple[str, list[str]]] = [
        ("user", [f"{u.account}/{u.name}" for u in fleet.users]),
        ("group", [f"{g.account}/{g.name}" for g in fleet.groups]),
        ("role", [f"{r.account}/{r.name.lower()}" for r in fleet.roles]),
        ("managed policy", [p.arn for p in fleet.policies]),
        ("repository", [r.arn for r in fleet.repositories]),
    ]
    for what, names in keys:
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise Refused(f"{what} `{name}` appears twice: names are unique per account")
            seen.add(name)


def _check_account(account: str, where: str) -> None:
    if not is_account_id(account):
        raise Refused(f"{where}: account `{account}` must be 12 digits")


def _check_name(name: str, path: str, where: str) -> None:
    if not _IAM_NAME.fullmatch(name):
        raise Refused(f"{where}: invalid name `{name}`")
    if not _IAM_PATH.fullmatch(path):
        raise Refused(f"{where}: invalid path `{path}`: it must start and end with `/`")


def _check_attachments(
    attached: Iterable[str], boundary: str | None, policies: set[str], where: str
) -> None:
    attached = list(attached)
    for arn in sorted({arn for arn in attached if attached.count(arn) > 1}):
        raise Refused(f"{where}: managed policy `{arn}` is attached twice")
    for arn in [*attached, *([boundary] if boundary else [])]:
        if arn not in policies:
            raise Refused(f"{where}: managed policy `{arn}` is not in the store or the bundle")


def _check_inline(inline: dict[str, Document] | object, where: str) -> None:
    assert isinstance(inline, dict)
    for name, document in inline.items():
        check_document(document, PolicyKind.IDENTITY, f"{where} inline policy {name}")


def _check_managed(policy: ManagedPolicy) -> None:
    where = f"managed policy {policy.arn}"
    arn = split_arn(policy.arn)
    if arn is None or arn.service != "iam" or not arn.resource.startswith("policy/"):
        raise Refused(f"{where}: not a policy ARN `arn:aws:iam::ACCOUNT:policy/NAME`")
    if policy.default_version not in policy.versions:
        raise Refused(
            f"{where}: default version `{policy.default_version}` is not among its versions"
        )
    for version, document in policy.versions.items():
        # a managed policy serves as identity policy or boundary: IAM's managed-policy rules apply
        check_document(document, PolicyKind.BOUNDARY, f"{policy.arn} version {version}")


def _check_group(group: Group, policies: set[str]) -> None:
    where = f"group `{group.name}` of account {group.account}"
    _check_account(group.account, where)
    _check_name(group.name, group.path, where)
    _check_inline(group.inline, f"{group.account}/group/{group.name}")
    _check_attachments(group.attached, None, policies, where)


def _check_user(user: User, policies: set[str], groups: set[tuple[str, str]]) -> None:
    where = f"user `{user.name}` of account {user.account}"
    _check_account(user.account, where)
    _check_name(user.name, user.path, where)
    _check_inline(user.inline, f"{user.account}/user/{user.name}")
    _check_attachments(user.attached, user.boundary, policies, where)
    for group in user.groups:
        if user.groups.count(group) > 1:
            raise Refused(f"{where}: group `{group}` is listed twice")
        if (user.account, group) not in groups:
            raise Refused(f"{where}: group `{group}` does not exist")


def _check_role(role: Role, policies: set[str]) -> None:
    where = f"role `{role.name}` of account {role.account}"
    _check_account(role.account, where)
    _check_name(role.name, role.path, where)
    _check_inline(role.inline, f"{role.account}/role/{role.name}")
    _check_attachments(role.attached, role.boundary, policies, where)
    if role.trust_policy is not None:
        check_document(
            role.trust_policy,
            PolicyKind.REPOSITORY,
            f"{role.account}/role/{role.name} trust policy",
        )


def check_repository(repository: Repository) -> None:
    where = f"repository `{repository.arn}`"
    arn = split_arn(repository.arn)
    if arn is None or arn.service != "ecr" or not arn.resource.startswith("repository/"):
        raise Refused(f"{where}: expected `arn:aws:ecr:REGION:ACCOUNT:repository/NAME`")
    _check_account(arn.account, where)
    name = repository.name
    if not 2 <= len(name) <= 256 or not _REPOSITORY_NAME.fullmatch(name):
        raise Refused(f"{where}: invalid repository name `{name}`")
    if not arn.region:
        raise Refused(f"{where}: the ARN must name a region")
    keys = [key.lower() for key in repository.tags]
    if len(keys) != len(set(keys)):
        raise Refused(f"{where}: tag keys must differ in more than letter case")
    if repository.policy is not None:
        check_document(
            repository.policy, PolicyKind.REPOSITORY, f"{repository.arn} repository policy"
        )


def _check_node(node: OrgNode, where: str) -> None:
    for index, document in enumerate(node.service_control):
        check_document(document, PolicyKind.SCP, f"{node.id} serviceControlPolicies[{index}]")
    for index, document in enumerate(node.resource_control):
        check_document(document, PolicyKind.RCP, f"{node.id} resourceControlPolicies[{index}]")
    for account in node.accounts:
        _check_account(account, f"{where} node `{node.id}`")
    for child in node.children:
        _check_node(child, where)
