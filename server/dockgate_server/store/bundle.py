"""Bundles (`dockgate-bundle/1`): AWS CLI output shapes in, the same shapes out."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from dockgate_server.policy.parse import load_json
from dockgate_server.store.model import (
    Document,
    Fleet,
    Group,
    ManagedPolicy,
    Organization,
    OrgNode,
    Repository,
    Role,
    User,
)
from dockgate_server.store.rows import node_to_json
from dockgate_server.store.validate import StoreError

__all__ = ["BUNDLE_FORMAT", "BundleError", "bundle_to_fleet", "fleet_to_bundle"]

BUNDLE_FORMAT = "dockgate-bundle/1"


class BundleError(StoreError):
    """A bundle that is not in the format; the message starts with a JSON pointer into it."""


def bundle_to_fleet(bundle: object) -> Fleet:
    """Read a bundle into a fleet (shape only: `validate_fleet` checks the policies)."""
    reader = _Reader()
    return reader.fleet(bundle)


def fleet_to_bundle(fleet: Fleet, partition: str | None = None) -> dict[str, Any]:
    """Write a fleet as a bundle, grouped by account, in the AWS CLI's shapes.

    The partition is the one its identities live in (`aws` for a fleet without any).
    """
    if partition is None:
        partitions = [u.partition for u in fleet.users] + [g.partition for g in fleet.groups]
        partitions += [r.partition for r in fleet.roles]
        partition = max(set(partitions), key=partitions.count) if partitions else "aws"
    accounts: dict[str, dict[str, Any]] = {}

    def account(number: str) -> dict[str, Any]:
        return accounts.setdefault(
            number,
            {
                "authorizationDetails": {
                    "UserDetailList": [],
                    "GroupDetailList": [],
                    "RoleDetailList": [],
                    "Policies": [],
                },
                "repositories": [],
            },
        )

    for number in fleet.accounts:
        account(number)
    for user in fleet.users:
        account(user.account)["authorizationDetails"]["UserDetailList"].append(_user_out(user))
    for group in fleet.groups:
        account(group.account)["authorizationDetails"]["GroupDetailList"].append(_group_out(group))
    for role in fleet.roles:
        account(role.account)["authorizationDetails"]["RoleDetailList"].append(_role_out(role))
    for policy in fleet.policies:
        owner = policy.account or _first_user_of(fleet, policy.arn)
        if owner is not None:
            account(owner)["authorizationDetails"]["Policies"].append(_policy_out(policy))
    for repository in fleet.repositories:
        entry: dict[str, Any] = {
            "repositoryArn": repository.arn,
            "tags": _tags_out(repository.tags),
        }
        if repository.policy is not None:
            entry["policyText"] = json.dumps(repository.policy)
        account(repository.account)["repositories"].append(entry)
    bundle: dict[str, Any] = {"format": BUNDLE_FORMAT, "partition": partition}
    if fleet.organization is not None:
        bundle["organization"] = {
            "id": fleet.organization.id,
            "root": node_to_json(fleet.organization.root),
        }
    bundle["accounts"] = accounts
    return bundle


def _first_user_of(fleet: Fleet, arn: str) -> str | None:
    """Where to list an AWS managed policy: the first account that attaches it."""
    entities: list[User | Group | Role] = [*fleet.users, *fleet.groups, *fleet.roles]
    for entity in entities:
        if arn in entity.attached or (not isinstance(entity, Group) and entity.boundary == arn):
            return entity.account
    return fleet.accounts[0] if fleet.accounts else None


class _Reader:
    """Reads the bundle; every error names its JSON pointer."""

    def fleet(self, bundle: object) -> Fleet:
        root = self.as_object(bundle, "")
        if "format" not in root:
            raise BundleError(f"bundle at /: missing `format` (expected `{BUNDLE_FORMAT}`)")
        if root["format"] != BUNDLE_FORMAT:
            given = root["format"]
            shown = given if isinstance(given, str) else json.dumps(given)
            raise BundleError(f"bundle at /format: expected `{BUNDLE_FORMAT}`, got `{shown}`")
        partition = root.get("partition", "aws")
        if not isinstance(partition, str) or not partition:
            raise BundleError("bundle at /partition: must be a non-empty string")
        users: list[User] = []
        groups: list[Group] = []
        roles: list[Role] = []
        policies: dict[str, ManagedPolicy] = {}
        repositories: list[Repository] = []
        accounts = self.as_object(root.get("accounts", {}), "/accounts")
        for number, raw in accounts.items():
            where = f"/accounts/{number}"
            body = self.as_object(raw, where)
            details = self.as_object(
                body.get("authorizationDetails", {}), f"{where}/authorizationDetails"
            )
            here = f"{where}/authorizationDetails"
            for index, item in enumerate(
                self.as_list(details.get("Policies", []), f"{here}/Policies")
            ):
                policy = self.policy(item, f"{here}/Policies/{index}")
                policies[policy.arn] = policy
            for index, item in enumerate(
                self.as_list(details.get("GroupDetailList", []), f"{here}/GroupDetailList")
            ):
                groups.append(
                    self.group(number, partition, item, f"{here}/GroupDetailList/{index}")
                )
            for index, item in enumerate(
                self.as_list(details.get("UserDetailList", []), f"{here}/UserDetailList")
            ):
                users.append(self.user(number, partition, item, f"{here}/UserDetailList/{index}"))
            for index, item in enumerate(
                self.as_list(details.get("RoleDetailList", []), f"{here}/RoleDetailList")
            ):
                roles.append(self.role(number, partition, item, f"{here}/RoleDetailList/{index}"))
            for index, item in enumerate(
                self.as_list(body.get("repositories", []), f"{where}/repositories")
            ):
                repositories.append(self.repository(number, item, f"{where}/repositories/{index}"))
        organization = None
        if root.get("organization") is not None:
            organization = self.organization(root["organization"], "/organization")
        return Fleet(
            tuple(accounts),
            tuple(users),
            tuple(groups),
            tuple(roles),
            tuple(policies.values()),
            tuple(repositories),
            organization,
        )

    # -- shapes -----------------------------------------------------------------------------

    def as_object(self, value: object, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise BundleError(f"bundle at {where or '/'}: must be an object")
        return value

    def as_list(self, value: object, where: str) -> list[Any]:
        if not isinstance(value, list):
            raise BundleError(f"bundle at {where}: must be a list")
        return value

    def string(
        self, body: Mapping[str, Any], key: str, where: str, default: str | None = None
    ) -> str:
        value = body.get(key, default)
        if not isinstance(value, str):
            raise BundleError(f"bundle at {where}/{key}: must be a string")
        return value

    def document(self, value: object, where: str) -> Document:
        """A policy document: an object, a JSON string, or the URL-encoded string the CLI prints."""
        if isinstance(value, str):
            text = unquote(value) if value.lstrip().startswith("%") else value
            try:
                value = load_json(text)
            except ValueError:
                try:
                    value = load_json(unquote(text))
                except ValueError as problem:
                    raise BundleError(
                        f"bundle at {where}: policy document is not JSON: {problem}"
                    ) from None
        return self.as_object(value, where)

    def tags(self, value: object, where: str) -> dict[str, str]:
        tags: dict[str, str] = {}
        for index, item in enumerate(self.as_list(value, where)):
            tag = self.as_object(item, f"{where}/{index}")
            tags[self.string(tag, "Key", f"{where}/{index}")] = self.string(
                tag, "Value", f"{where}/{index}"
            )
        return tags

    def inline(self, body: Mapping[str, Any], key: str, where: str) -> dict[str, Document]:
        inline: dict[str, Document] = {}
        for index, item in enumerate(self.as_list(body.get(key, []), f"{where}/{key}")):
            entry = self.as_object(item, f"{where}/{key}/{index}")
            name = self.string(entry, "PolicyName", f"{where}/{key}/{index}")
            inline[name] = self.document(
                entry.get("PolicyDocument"), f"{where}/{key}/{index}/PolicyDocument"
            )
        return inline

    def attached(self, body: Mapping[str, Any], where: str) -> tuple[str, ...]:
        items = self.as_list(
            body.get("AttachedManagedPolicies", []), f"{where}/AttachedManagedPolicies"
        )
        return tuple(
            self.string(
                self.as_object(item, f"{where}/AttachedManagedPolicies/{i}"),
                "PolicyArn",
                f"{where}/AttachedManagedPolicies/{i}",
            )
            for i, item in enumerate(items)
        )

    def boundary(self, body: Mapping[str, Any], where: str) -> str | None:
        raw = body.get("PermissionsBoundary")
        if raw is None:
            return None
        return self.string(
            self.as_object(raw, f"{where}/PermissionsBoundary"),
            "PermissionsBoundaryArn",
            f"{where}/PermissionsBoundary",
        )

    def user(self, account: str, partition: str, raw: object, where: str) -> User:
        body = self.as_object(raw, where)
        groups = tuple(self.as_list(body.get("GroupList", []), f"{where}/GroupList"))
        if not all(isinstance(group, str) for group in groups):
            raise BundleError(f"bundle at {where}/GroupList: must be a list of group names")
        return User(
            account,
            self.string(body, "UserName", where),
            self.string(body, "Path", where, "/"),
            body.get("UserId"),
            self.tags(body.get("Tags", []), f"{where}/Tags"),
            self.boundary(body, where),
            groups,
            self.inline(body, "UserPolicyList", where),
            self.attached(body, where),
            partition,
        )

    def group(self, account: str, partition: str, raw: object, where: str) -> Group:
        body = self.as_object(raw, where)
        return Group(
            account,
            self.string(body, "GroupName", where),
            self.string(body, "Path", where, "/"),
            body.get("GroupId"),
            self.inline(body, "GroupPolicyList", where),
            self.attached(body, where),
            partition,
        )

    def role(self, account: str, partition: str, raw: object, where: str) -> Role:
        body = self.as_object(raw, where)
        trust = body.get("AssumeRolePolicyDocument")
        duration = body.get("MaxSessionDuration", 3600)
        if not isinstance(duration, int) or not 3600 <= duration <= 43200:
            raise BundleError(
                f"bundle at {where}/MaxSessionDuration: must be 3600 to 43200 seconds"
            )
        return Role(
            account,
            self.string(body, "RoleName", where),
            self.string(body, "Path", where, "/"),
            body.get("RoleId"),
            None if trust is None else self.document(trust, f"{where}/AssumeRolePolicyDocument"),
            self.tags(body.get("Tags", []), f"{where}/Tags"),
            self.boundary(body, where),
            duration,
            self.inline(body, "RolePolicyList", where),
            self.attached(body, where),
            partition,
        )

    def policy(self, raw: object, where: str) -> ManagedPolicy:
        body = self.as_object(raw, where)
        versions: dict[str, Document] = {}
        default = body.get("DefaultVersionId")
        for index, item in enumerate(
            self.as_list(body.get("PolicyVersionList", []), f"{where}/PolicyVersionList")
        ):
            entry = self.as_object(item, f"{where}/PolicyVersionList/{index}")
            version = self.string(entry, "VersionId", f"{where}/PolicyVersionList/{index}")
            versions[version] = self.document(
                entry.get("Document"), f"{where}/PolicyVersionList/{index}/Document"
            )
            if entry.get("IsDefaultVersion") is True and default is None:
                default = version
        if not isinstance(default, str):
            raise BundleError(f"bundle at {where}/DefaultVersionId: must name the default version")
        return ManagedPolicy(
            self.string(body, "Arn", where),
            self.string(body, "PolicyName", where),
            self.string(body, "Path", where, "/"),
            default,
            versions,
            body.get("PolicyId"),
        )

    def repository(self, account: str, raw: object, where: str) -> Repository:
        body = self.as_object(raw, where)
        arn = self.string(body, "repositoryArn", where)
        if arn.split(":")[4:5] != [account]:
            raise BundleError(
                f"bundle at {where}/repositoryArn: `{arn}` is not in account {account}"
            )
        policy_text = body.get("policyText")
        policy = None if policy_text is None else self.document(policy_text, f"{where}/policyText")
        return Repository(arn, self.tags(body.get("tags", []), f"{where}/tags"), policy)

    def organization(self, raw: object, where: str) -> Organization:
        body = self.as_object(raw, where)
        return Organization(
            self.string(body, "id", where), self.node(body.get("root"), f"{where}/root", "root")
        )

    def node(self, raw: object, where: str, default_id: str) -> OrgNode:
        body = self.as_object(raw, where)
        scps = self.as_list(
            body.get("serviceControlPolicies", []), f"{where}/serviceControlPolicies"
        )
        rcps = self.as_list(
            body.get("resourceControlPolicies", []), f"{where}/resourceControlPolicies"
        )
        accounts = self.as_list(body.get("accounts", []), f"{where}/accounts")
        if not all(isinstance(account, str) for account in accounts):
            raise BundleError(f"bundle at {where}/accounts: must be a list of account IDs")
        children = self.as_list(body.get("children", []), f"{where}/children")
        return OrgNode(
            self.string(body, "id", where, default_id),
            tuple(
                self.document(d, f"{where}/serviceControlPolicies/{i}") for i, d in enumerate(scps)
            ),
            tuple(
                self.document(d, f"{where}/resourceControlPolicies/{i}") for i, d in enumerate(rcps)
            ),
            tuple(accounts),
            tuple(
                self.node(child, f"{where}/children/{i}", f"{default_id}-{i}")
                for i, child in enumerate(children)
            ),
        )


def _tags_out(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def _inline_out(inline: Mapping[str, Document]) -> list[dict[str, Any]]:
    return [{"PolicyName": name, "PolicyDocument": document} for name, document in inline.items()]


def _attached_out(attached: tuple[str, ...]) -> list[dict[str, str]]:
    return [{"PolicyName": arn.rsplit("/", 1)[-1], "PolicyArn": arn} for arn in attached]


def _boundary_out(entry: dict[str, Any], boundary: str | None) -> dict[str, Any]:
    if boundary is not None:
        entry["PermissionsBoundary"] = {
            "PermissionsBoundaryType": "Policy",
            "PermissionsBoundaryArn": boundary,
        }
    return entry


def _user_out(user: User) -> dict[str, Any]:
    entry: dict[str, Any] = {"UserName": user.name, "Path": user.path, "Arn": user.arn}
    if user.user_id is not None:
        entry["UserId"] = user.user_id
    entry |= {
        "GroupList": list(user.groups),
        "UserPolicyList": _inline_out(user.inline),
        "AttachedManagedPolicies": _attached_out(user.attached),
        "Tags": _tags_out(user.tags),
    }
    return _boundary_out(entry, user.boundary)


def _group_out(group: Group) -> dict[str, Any]:
    entry: dict[str, Any] = {"GroupName": group.name, "Path": group.path, "Arn": group.arn}
    if group.group_id is not None:
        entry["GroupId"] = group.group_id
    entry |= {
        "GroupPolicyList": _inline_out(group.inline),
        "AttachedManagedPolicies": _attached_out(group.attached),
    }
    return entry


def _role_out(role: Role) -> dict[str, Any]:
    entry: dict[str, Any] = {"RoleName": role.name, "Path": role.path, "Arn": role.arn}
    if role.role_id is not None:
        entry["RoleId"] = role.role_id
    if role.trust_policy is not None:
        entry["AssumeRolePolicyDocument"] = role.trust_policy
    entry |= {
        "RolePolicyList": _inline_out(role.inline),
        "AttachedManagedPolicies": _attached_out(role.attached),
        "Tags": _tags_out(role.tags),
        "MaxSessionDuration": role.max_session_duration,
    }
    return _boundary_out(entry, role.boundary)


def _policy_out(policy: ManagedPolicy) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "PolicyName": policy.name,
        "Arn": policy.arn,
        "Path": policy.path,
        "DefaultVersionId": policy.default_version,
    }
    if policy.policy_id is not None:
        entry["PolicyId"] = policy.policy_id
    entry["PolicyVersionList"] = [
        {
            "Document": document,
            "VersionId": version,
            "IsDefaultVersion": version == policy.default_version,
        }
        for version, document in policy.versions.items()
    ]
    return entry
