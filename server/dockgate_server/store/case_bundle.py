"""Turn a simulation case into a one-case bundle plus the request to `check` against it.

This is how the stateless format (every policy inline) and the stateful one (a fleet in a store)
are held to the same answers: import the bundle, ask the request, compare with `simulate`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dockgate_server.policy.arn import split_arn
from dockgate_server.policy.principal import CallerKind, parse_caller
from dockgate_server.store.bundle import BUNDLE_FORMAT

__all__ = ["CaseBundle", "case_to_bundle"]

_ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
"""What AWS's FullAWSAccess SCP says: a level that allows everything, to pad a path."""

_BOUNDARY = "case-boundary"


@dataclass(frozen=True, slots=True)
class CaseBundle:
    bundle: dict[str, Any]
    principal: str
    action: str
    resource: str
    context: dict[str, Any]
    session_policy: Mapping[str, Any] | None


def case_to_bundle(case: Mapping[str, Any]) -> CaseBundle:
    """The fleet a case describes: the caller's entity with its policies, tags and boundary; the
    repository with its tags and policy; an organization whose paths carry the SCP and RCP levels.

    What a fleet cannot hold moves into the request context, where `simulate` would have put it
    too: tags of a root or service caller, tags of a resource that is not a repository.
    """
    request = case["request"]
    principal, action, resource = request["principal"], request["action"], request["resource"]
    context = dict(request.get("context") or {})
    caller = parse_caller(principal)
    arn = split_arn(resource) if resource != "*" else None
    principal_account = caller.account or (arn.account if arn and arn.account else "111122223333")
    resource_account = arn.account if arn and arn.account else principal_account
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

    account(principal_account)
    principal_tags: dict[str, str] = case.get("principalTags") or {}
    entity = _entity(case, caller.kind, principal, principal_account, principal_tags)
    if entity is not None:
        list_name, body = entity
        details = account(principal_account)["authorizationDetails"]
        details[list_name].append(body)
        boundary = case.get("permissionsBoundary")
        if boundary is not None:
            policy_arn = f"arn:{caller.partition}:iam::{principal_account}:policy/{_BOUNDARY}"
            details["Policies"].append(
                {
                    "PolicyName": _BOUNDARY,
                    "Arn": policy_arn,
                    "Path": "/",
                    "DefaultVersionId": "v1",
                    "PolicyVersionList": [
                        {"Document": boundary, "VersionId": "v1", "IsDefaultVersion": True}
                    ],
                }
            )
            body["PermissionsBoundary"] = {
                "PermissionsBoundaryType": "Policy",
                "PermissionsBoundaryArn": policy_arn,
            }
    else:
        for key, value in principal_tags.items():
            context.setdefault(f"aws:PrincipalTag/{key}", value)

    resource_tags: dict[str, str] = case.get("resourceTags") or {}
    if arn is not None and arn.service == "ecr" and arn.resource.startswith("repository/"):
        repository: dict[str, Any] = {"repositoryArn": resource, "tags": _tags(resource_tags)}
        if case.get("resourcePolicy") is not None:
            repository["policyText"] = case["resourcePolicy"]
        account(resource_account)["repositories"].append(repository)
    elif arn is not None:
        for key, value in resource_tags.items():
            context.setdefault(f"aws:ResourceTag/{key}", value)
            context.setdefault(f"ecr:ResourceTag/{key}", value)

    bundle: dict[str, Any] = {"format": BUNDLE_FORMAT, "partition": caller.partition or "aws"}
    organization = _organization(case, principal_account, resource_account)
    if organization is not None:
        bundle["organization"] = organization
    bundle["accounts"] = accounts
    return CaseBundle(bundle, principal, action, resource, context, case.get("sessionPolicy"))


def _entity(
    case: Mapping[str, Any], kind: CallerKind, principal: str, account: str, tags: Mapping[str, str]
) -> tuple[str, dict[str, Any]] | None:
    """The user or role behind the caller, carrying the case's identity policies."""
    inline = [
        {"PolicyName": f"identity-{i}", "PolicyDocument": document}
        for i, document in enumerate(case.get("identityPolicies") or [])
    ]
    path_and_name = principal.split(":", 5)[-1].split("/")
    if kind is CallerKind.USER or kind is CallerKind.ROLE:
        name, path = path_and_name[-1], "/" + "".join(f"{p}/" for p in path_and_name[1:-1])
    elif kind is CallerKind.SESSION:
        name, path = path_and_name[1], "/"
    elif kind is CallerKind.FEDERATED_USER:
        name, path = path_and_name[1], "/"  # the federating user, by the convention of §3.5
    else:
        return None
    if kind is CallerKind.ROLE or kind is CallerKind.SESSION:
        return "RoleDetailList", {
            "RoleName": name,
            "Path": path,
            "RolePolicyList": inline,
            "Tags": _tags(tags),
        }
    return "UserDetailList", {
        "UserName": name,
        "Path": path,
        "UserPolicyList": inline,
        "Tags": _tags(tags),
    }


def _tags(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def _organization(
    case: Mapping[str, Any], principal_account: str, resource_account: str
) -> dict[str, Any] | None:
    """A tree whose path to each account carries that account's levels.

    Zero levels mean the same as none. Where one account needs both kinds, the shorter list is
    padded: an SCP level that allows everything, an RCP level with only AWS's implicit allow-all.
    """
    scp_levels = case.get("serviceControlPolicies") or None
    rcp_levels = case.get("resourceControlPolicies") or None
    if scp_levels is None and rcp_levels is None:
        return None
    paths: dict[str, list[tuple[list[Any], list[Any]]]] = {}
    if principal_account == resource_account:
        depth = max(len(scp_levels or []), len(rcp_levels or []))
        paths[principal_account] = [
            (_level(scp_levels, i, [_ALLOW_ALL]), _level(rcp_levels, i, [])) for i in range(depth)
        ]
    else:
        if scp_levels is not None:
            paths[principal_account] = [(list(level), []) for level in scp_levels]
        if rcp_levels is not None:
            paths[resource_account] = [([], list(level)) for level in rcp_levels]
    root: dict[str, Any] = {
        "id": "r-case",
        "serviceControlPolicies": [],
        "resourceControlPolicies": [],
        "accounts": [],
        "children": [],
    }
    for account, levels in paths.items():
        node = root
        for depth, (scps, rcps) in enumerate(levels):
            if depth:
                child = {
                    "id": f"ou-{account}-{depth}",
                    "serviceControlPolicies": [],
                    "resourceControlPolicies": [],
                    "accounts": [],
                    "children": [],
                }
                node["children"].append(child)
                node = child
            node["serviceControlPolicies"] += scps
            node["resourceControlPolicies"] += rcps
        node["accounts"].append(account)
    return {"id": "o-case", "root": root}


def _level(levels: list[Any] | None, index: int, padding: list[Any]) -> list[Any]:
    if levels is None or index >= len(levels):
        return padding
    return list(levels[index])
