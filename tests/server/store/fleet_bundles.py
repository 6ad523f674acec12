"""Bundles the store tests import: a realistic fleet in the AWS CLI's shapes, and a large one."""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import quote

MAIN = "111122223333"
PARTNER = "444455556666"
SANDBOX = "777788889999"
"""an account outside the organization"""

REGISTRY_READ = f"arn:aws:iam::{MAIN}:policy/registry-read"
ECR_ONLY = f"arn:aws:iam::{MAIN}:policy/boundaries/ecr-only"
AWS_READ_ONLY = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"
APP = f"arn:aws:ecr:us-east-1:{MAIN}:repository/team-a/app"
APP_EU = f"arn:aws:ecr:eu-west-1:{MAIN}:repository/team-a/app"
TOOLS = f"arn:aws:ecr:us-east-1:{MAIN}:repository/team-b/tools"
BASE = f"arn:aws:ecr:us-east-1:{PARTNER}:repository/partner/base"
ORG_ID = "o-a1b2c3d4e5"
OU_ID = "ou-ab12-34cd5678"

READ_ACTIONS = [
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchCheckLayerAvailability",
]


def statement(effect: str, action: object, resource: object = "*", **more: Any) -> dict[str, Any]:
    return {"Effect": effect, "Action": action, "Resource": resource, **more}


def document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


ALLOW_ALL = document(statement("Allow", "*"))
LOGIN = document(statement("Allow", "ecr:GetAuthorizationToken"))
PUSH_TEAM_A = document(
    {"Sid": "Login", **statement("Allow", "ecr:GetAuthorizationToken")},
    {
        "Sid": "Push",
        **statement(
            "Allow",
            [*READ_ACTIONS, "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:PutImage"],
            f"arn:aws:ecr:*:{MAIN}:repository/team-a/*",
        ),
    },
)
REPOSITORY_POLICY = document(
    {
        "Sid": "PartnerPull",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{PARTNER}:root"},
        "Action": READ_ACTIONS,
    }
)
TRUST_ACCOUNT = document(
    {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{MAIN}:root"},
        "Action": "sts:AssumeRole",
    }
)
TRUST_SERVICE = document(
    {
        "Effect": "Allow",
        "Principal": {"Service": "codebuild.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }
)
NO_DELETES = document(
    {"Sid": "AllowAll", **statement("Allow", "*")},
    {"Sid": "NoDeletes", **statement("Deny", "ecr:DeleteRepository")},
)
ORG_ONLY = document(
    {
        "Sid": "OrgOnly",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "ecr:*",
        "Resource": "*",
        "Condition": {
            "StringNotEqualsIfExists": {"aws:PrincipalOrgID": ORG_ID},
            "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
        },
    }
)


def tags(**pairs: str) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in pairs.items()]


def url_encoded(value: dict[str, Any]) -> str:
    """A policy document as `aws iam get-account-authorization-details` may print it."""
    return quote(json.dumps(value), safe="")


def managed_policy(
    arn: str, versions: dict[str, dict[str, Any]], default: str, path: str = "/"
) -> dict[str, Any]:
    return {
        "PolicyName": arn.rsplit("/", 1)[-1],
        "PolicyId": "ANPA" + arn.rsplit("/", 1)[-1].upper().replace("-", ""),
        "Arn": arn,
        "Path": path,
        "DefaultVersionId": default,
        "PolicyVersionList": [
            {"Document": body, "VersionId": version, "IsDefaultVersion": version == default}
            for version, body in versions.items()
        ],
    }


def attached(*arns: str) -> list[dict[str, str]]:
    return [{"PolicyName": arn.rsplit("/", 1)[-1], "PolicyArn": arn} for arn in arns]


def boundary(arn: str) -> dict[str, str]:
    return {"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": arn}


def realistic_bundle() -> dict[str, Any]:
    """Three accounts (one outside the organization), groups, users, roles, managed policies with
    several versions and a default that is not the latest, a boundary, an AWS managed policy,
    repositories in two regions, an organization with a root and an OU carrying SCPs and RCPs."""
    main_details = {
        "UserDetailList": [
            {
                "UserName": "alice",
                "Path": "/",
                "UserId": "AIDAALICE",
                "GroupList": ["readers", "pushers"],
                "UserPolicyList": [
                    # the CLI sometimes prints a document URL-encoded
                    {"PolicyName": "push-team-a", "PolicyDocument": url_encoded(PUSH_TEAM_A)}
                ],
                "AttachedManagedPolicies": [],
                "PermissionsBoundary": boundary(ECR_ONLY),
                "Tags": tags(team="a", CostCenter="1234"),
            },
            {
                "UserName": "bob",
                "Path": "/ci/",
                "UserId": "AIDABOB",
                "GroupList": ["readers"],
                "UserPolicyList": [],
                "AttachedManagedPolicies": attached(REGISTRY_READ),
                "Tags": [],
            },
        ],
        "GroupDetailList": [
            {
                "GroupName": "readers",
                "Path": "/",
                "GroupId": "AGPAREADERS",
                "GroupPolicyList": [{"PolicyName": "login", "PolicyDocument": LOGIN}],
                "AttachedManagedPolicies": attached(REGISTRY_READ),
            },
            {
                "GroupName": "pushers",
                "Path": "/teams/",
                "GroupPolicyList": [],
                "AttachedManagedPolicies": attached(AWS_READ_ONLY),
            },
        ],
        "RoleDetailList": [
            {
                "RoleName": "Deploy",
                "Path": "/",
                "RoleId": "AROADEPLOY",
                "AssumeRolePolicyDocument": TRUST_ACCOUNT,
                "RolePolicyList": [
                    {
                        "PolicyName": "delete-dev",
                        "PolicyDocument": document(
                            statement(
                                "Allow",
                                "ecr:DeleteRepository",
                                "*",
                                Condition={"StringEquals": {"aws:ResourceTag/env": "dev"}},
                            )
                        ),
                    }
                ],
                "AttachedManagedPolicies": attached(REGISTRY_READ),
                "Tags": tags(team="ops", env="prod"),
                "MaxSessionDuration": 7200,
            },
            {
                "RoleName": "ci-builder",
                "Path": "/service-role/",
                "AssumeRolePolicyDocument": url_encoded(TRUST_SERVICE),
                "RolePolicyList": [{"PolicyName": "push", "PolicyDocument": PUSH_TEAM_A}],
                "AttachedManagedPolicies": [],
                "PermissionsBoundary": boundary(ECR_ONLY),
                "Tags": [],
                "MaxSessionDuration": 3600,
            },
        ],
        "Policies": [
            managed_policy(
                REGISTRY_READ,
                {
                    "v1": document(statement("Allow", "ecr:*")),
                    "v2": document(
                        {"Sid": "Login", **statement("Allow", "ecr:GetAuthorizationToken")},
                        {
                            "Sid": "Read",
                            **statement(
                                "Allow",
                                [*READ_ACTIONS, "ecr:ListImages", "ecr:DescribeImages"],
                                f"arn:aws:ecr:*:{MAIN}:repository/*",
                            ),
                        },
                    ),
                    # the latest version is not the default one
                    "v3": document(statement("Allow", READ_ACTIONS)),
                },
                "v2",
            ),
            managed_policy(
                ECR_ONLY, {"v1": document(statement("Allow", "ecr:*"))}, "v1", "/boundaries/"
            ),
            managed_policy(
                AWS_READ_ONLY,
                {"v3": document(statement("Allow", [*READ_ACTIONS, "ecr:GetAuthorizationToken"]))},
                "v3",
            ),
        ],
    }
    partner_details = {
        "UserDetailList": [],
        "GroupDetailList": [],
        "RoleDetailList": [
            {
                "RoleName": "partner-ci",
                "Path": "/",
                "AssumeRolePolicyDocument": TRUST_SERVICE,
                "RolePolicyList": [
                    {
                        "PolicyName": "pull-anything",
                        "PolicyDocument": document(
                            statement("Allow", [*READ_ACTIONS, "ecr:GetAuthorizationToken"])
                        ),
                    }
                ],
                "AttachedManagedPolicies": [],
                "Tags": tags(partner="yes"),
            }
        ],
        "Policies": [],
    }
    sandbox_details = {
        "UserDetailList": [
            {
                "UserName": "sandbox-user",
                "Path": "/",
                "GroupList": [],
                "UserPolicyList": [
                    {"PolicyName": "everything", "PolicyDocument": json.dumps(ALLOW_ALL)}
                ],
                "AttachedManagedPolicies": [],
                "Tags": [],
            }
        ]
    }
    return copy.deepcopy(
        {
            "format": "dockgate-bundle/1",
            "partition": "aws",
            "organization": {
                "id": ORG_ID,
                "root": {
                    "id": "r-ab12",
                    "serviceControlPolicies": [ALLOW_ALL],
                    "resourceControlPolicies": [],
                    "accounts": [],
                    "children": [
                        {
                            "id": OU_ID,
                            "serviceControlPolicies": [NO_DELETES],
                            "resourceControlPolicies": [ORG_ONLY],
                            "accounts": [MAIN, PARTNER],
                            "children": [],
                        }
                    ],
                },
            },
            "accounts": {
                MAIN: {
                    "authorizationDetails": main_details,
                    "repositories": [
                        {
                            "repositoryArn": APP,
                            "tags": tags(env="prod", team="a"),
                            "policyText": json.dumps(REPOSITORY_POLICY),
                        },
                        {"repositoryArn": APP_EU, "tags": tags(env="prod")},
                        {"repositoryArn": TOOLS, "tags": tags(env="dev")},
                    ],
                },
                PARTNER: {
                    "authorizationDetails": partner_details,
                    "repositories": [
                        {
                            "repositoryArn": BASE,
                            "tags": [],
                            "policyText": json.dumps(
                                document(
                                    {
                                        "Effect": "Allow",
                                        "Principal": {"AWS": f"arn:aws:iam::{MAIN}:root"},
                                        "Action": READ_ACTIONS,
                                    }
                                )
                            ),
                        }
                    ],
                },
                SANDBOX: {"authorizationDetails": sandbox_details, "repositories": []},
            },
        }
    )


def large_bundle(account: str, users: int, repositories: int) -> dict[str, Any]:
    """One account with many users (each with tags and an inline policy) and repositories."""
    pull = document(statement("Allow", READ_ACTIONS, f"arn:aws:ecr:*:{account}:repository/*"))
    return {
        "format": "dockgate-bundle/1",
        "accounts": {
            account: {
                "authorizationDetails": {
                    "UserDetailList": [
                        {
                            "UserName": f"user-{index:05d}",
                            "Tags": tags(team=f"team-{index % 17}"),
                            "UserPolicyList": [{"PolicyName": "pull", "PolicyDocument": pull}],
                        }
                        for index in range(users)
                    ]
                },
                "repositories": [
                    {
                        "repositoryArn": f"arn:aws:ecr:us-east-1:{account}:repository/"
                        f"team-{index % 17}/app-{index:05d}",
                        "tags": tags(team=f"team-{index % 17}", env="prod"),
                    }
                    for index in range(repositories)
                ],
            }
        },
    }
