"""Synthetic ECR fleets for benchmarks: realistic policy shapes at any size, reproducibly."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

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

__all__ = ["PROBE_ACCOUNT", "FleetShape", "ProbeRequest", "probe_requests", "synthetic_fleet"]

PROBE_ACCOUNT = "111111111111"
"""The account of the probe slice: the principal and repositories every benchmark asks about."""

_PULL = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
_PUSH = [
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
]
_OTHER = [
    "ecr:DescribeImages",
    "ecr:ListImages",
    "ecr:DescribeRepositories",
    "ecr:ListTagsForResource",
]


@dataclass(frozen=True, slots=True)
class FleetShape:
    repositories: int
    principals: int
    managed_policies: int
    statements_per_managed: int = 20
    statements_per_inline: int = 25
    statements_per_repository_policy: int = 7
    accounts: int = 10
    groups: int = 0
    """spread over the accounts; each user joins one group of its account"""
    statements_per_group: int = 10


def synthetic_fleet(shape: FleetShape, seed: int = 7) -> Fleet:
    """The probe slice (identical at every size) plus `shape` worth of other entities."""
    rng = random.Random(seed)
    accounts = [f"{200000000000 + i:012d}" for i in range(shape.accounts)]
    teams = [f"team-{i}" for i in range(max(1, shape.repositories // 50))]
    policies = [
        _managed(
            f"arn:aws:iam::{accounts[i % len(accounts)]}:policy/bulk-{i}",
            shape.statements_per_managed,
            teams,
            rng,
        )
        for i in range(shape.managed_policies)
    ]
    groups = [
        Group(
            accounts[i % len(accounts)],
            f"group-{i}",
            inline={"inline": _identity_document(shape.statements_per_group, teams, rng)},
            attached=tuple(
                policy.arn
                for policy in policies[i % len(accounts) :: len(accounts)][:1]
                if policy.account == accounts[i % len(accounts)]
            ),
        )
        for i in range(shape.groups)
    ]
    users: list[User] = []
    roles: list[Role] = []
    for i in range(shape.principals):
        account = accounts[i % len(accounts)]
        own = [policy.arn for policy in policies if policy.account == account]
        attached = (rng.choice(own),) if own else ()
        inline = {"inline": _identity_document(shape.statements_per_inline, teams, rng)}
        tags = {"team": rng.choice(teams)}
        if i % 3:
            mine = [group.name for group in groups if group.account == account]
            joined = (mine[i % len(mine)],) if mine else ()
            users.append(
                User(account, f"user-{i}", "/", None, tags, None, joined, inline, attached)
            )
        else:
            roles.append(
                Role(account, f"role-{i}", "/ci/", None, None, tags, None, 3600, inline, attached)
            )
    repositories = [
        Repository(
            f"arn:aws:ecr:us-east-1:{accounts[i % len(accounts)]}:repository/"
            f"{teams[i % len(teams)]}/app-{i}",
            {"team": teams[i % len(teams)], "env": rng.choice(["dev", "prod"])},
            _repository_document(shape.statements_per_repository_policy, accounts, rng),
        )
        for i in range(shape.repositories)
    ]
    probe_policies, probe_users, probe_repositories = _probe_slice()
    organization = Organization(
        "o-bench",
        OrgNode(
            "r-bench",
            service_control=(_FULL_ACCESS,),
            children=(
                OrgNode(
                    "ou-bench",
                    service_control=(_REGION_GUARD,),
                    accounts=(PROBE_ACCOUNT, *accounts),
                ),
            ),
        ),
    )
    return Fleet(
        (PROBE_ACCOUNT, *accounts),
        tuple(probe_users + users),
        tuple(groups),
        tuple(roles),
        tuple(probe_policies + policies),
        tuple(probe_repositories + repositories),
        organization,
    )


ProbeRequest = tuple[str, str, str, dict[str, str]]
"""(principal, action, resource, context)"""


def probe_requests() -> list[ProbeRequest]:
    """Requests about the probe slice: pulls and pushes, allowed and denied, some with context."""
    user = f"arn:aws:iam::{PROBE_ACCOUNT}:user/probe"
    requests: list[ProbeRequest] = []
    for index in range(5):
        repository = f"arn:aws:ecr:us-east-1:{PROBE_ACCOUNT}:repository/probe/app-{index}"
        for action in [*_PULL, *_PUSH, *_OTHER]:
            context = {"aws:SourceIp": f"203.0.113.{index}", "aws:RequestedRegion": "us-east-1"}
            requests.append((user, action, repository, context))
    requests.append((user, "ecr:GetAuthorizationToken", "*", {}))
    return requests


_FULL_ACCESS: Document = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
_REGION_GUARD: Document = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "AllowAll", "Effect": "Allow", "Action": "*", "Resource": "*"},
        {
            "Sid": "OnlyUsEast",
            "Effect": "Deny",
            "Action": "ecr:*",
            "Resource": "*",
            "Condition": {
                "StringNotEqualsIfExists": {"aws:RequestedRegion": ["us-east-1", "eu-west-1"]}
            },
        },
    ],
}


def _probe_slice() -> tuple[list[ManagedPolicy], list[User], list[Repository]]:
    """About a hundred statements that every probe request reads, the same at every fleet size."""
    arn = f"arn:aws:iam::{PROBE_ACCOUNT}:policy/probe-managed"
    rng = random.Random(1)
    managed = _managed(arn, 20, ["probe"], rng)
    inline = _identity_document(20, ["probe"], rng)
    inline["Statement"].append(
        {
            "Sid": "ProbePull",
            "Effect": "Allow",
            "Action": _PULL,
            "Resource": f"arn:aws:ecr:us-east-1:{PROBE_ACCOUNT}:repository/probe/*",
        }
    )
    inline["Statement"].append(
        {"Sid": "Login", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"}
    )
    user = User(
        PROBE_ACCOUNT, "probe", "/", None, {"team": "probe"}, None, (), {"inline": inline}, (arn,)
    )
    repositories = [
        Repository(
            f"arn:aws:ecr:us-east-1:{PROBE_ACCOUNT}:repository/probe/app-{i}",
            {"team": "probe", "env": "prod"},
            _repository_document(7, [PROBE_ACCOUNT], rng),
        )
        for i in range(5)
    ]
    return [managed], [user], repositories


def _managed(arn: str, statements: int, teams: list[str], rng: random.Random) -> ManagedPolicy:
    return ManagedPolicy(
        arn, arn.rsplit("/", 1)[-1], "/", "v1", {"v1": _identity_document(statements, teams, rng)}
    )


def _identity_document(statements: int, teams: list[str], rng: random.Random) -> dict[str, Any]:
    body: list[dict[str, Any]] = []
    for index in range(statements):
        team = rng.choice(teams)
        kind = index % 5
        statement: dict[str, Any] = {
            "Sid": f"S{index}",
            "Effect": "Deny" if kind == 4 else "Allow",
            "Action": rng.sample(_PULL + _PUSH + _OTHER, k=3),
            "Resource": f"arn:aws:ecr:*:*:repository/{team}/*",
        }
        if kind == 1:
            statement["Condition"] = {
                "StringEquals": {"ecr:ResourceTag/team": "${aws:PrincipalTag/team}"}
            }
        elif kind == 2:
            statement["Condition"] = {
                "IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:db8::/32"]}
            }
        elif kind == 3:
            statement["Resource"] = f"arn:aws:ecr:us-east-1:*:repository/{team}-*"
        elif kind == 4:
            statement["Condition"] = {
                "StringEquals": {"aws:ResourceTag/env": "prod"},
                "Bool": {"aws:MultiFactorAuthPresent": "false"},
            }
        body.append(statement)
    return {"Version": "2012-10-17", "Statement": body}


def _repository_document(
    statements: int, accounts: list[str], rng: random.Random
) -> dict[str, Any]:
    body: list[dict[str, Any]] = []
    for index in range(statements):
        account = rng.choice(accounts)
        principal: Any = {"AWS": f"arn:aws:iam::{account}:root"} if index % 2 else "*"
        statement: dict[str, Any] = {
            "Sid": f"R{index}",
            "Effect": "Allow",
            "Principal": principal,
            "Action": _PULL if index % 3 else ["ecr:*"],
        }
        if principal == "*":
            statement["Condition"] = {"StringEquals": {"aws:PrincipalOrgID": "o-bench"}}
        body.append(statement)
    return {"Version": "2012-10-17", "Statement": body}
